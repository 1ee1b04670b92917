"""The primaryStorage plugin: the type-independent part of primary storage (its APIs,
cluster attachment, capacity books, host hooks). Types come from their own plugins
(localStorage, nfsPrimaryStorage), each registering a PrimaryStorageBackend."""

from __future__ import annotations

from zstackpy.core.cascade import CascadeParticipant
from zstackpy.core.plugin import PluginRegistry
from zstackpy.services.host.extensions import HostAllocatorFilter, HostConnectExtension
from zstackpy.services.primary_storage.capacity import PrimaryStorageCapacityService
from zstackpy.services.primary_storage.flows import ATTACH_FLOWS
from zstackpy.services.primary_storage.messages import PrimaryStorageErr
from zstackpy.services.primary_storage.queries import (
    FOREIGN_ALIASES,
    FOREIGN_EXPANSIONS,
    queryables,
)
from zstackpy.services.primary_storage.service import PrimaryStorageService

# HTTP statuses of the errors a client can act on; PS.1007 (a host failed to mount or
# init) stays 503 like ZStack's: the fault is on the storage side, not in the request.
ERROR_STATUSES = {
    PrimaryStorageErr.INVALID_URL: 400,
    PrimaryStorageErr.WRONG_ZONE: 400,
    PrimaryStorageErr.UNKNOWN_TYPE: 400,
    PrimaryStorageErr.ALREADY_ATTACHED: 409,
    PrimaryStorageErr.NOT_ATTACHED: 409,
    PrimaryStorageErr.STILL_ATTACHED: 409,
    PrimaryStorageErr.IN_USE: 409,
    PrimaryStorageErr.WRONG_STATE: 409,
    PrimaryStorageErr.INSUFFICIENT_CAPACITY: 409,
    PrimaryStorageErr.NO_CANDIDATE: 409,
}


class _Plugin:
    name = "primaryStorage"

    def setup(self, registry: PluginRegistry) -> None:
        registry.add_service(PrimaryStorageService)
        for code, status in ERROR_STATUSES.items():
            registry.add_error_status(code, status)
        registry.add_service(PrimaryStorageCapacityService)
        for flow_id, flow in ATTACH_FLOWS.items():
            registry.add_flow(flow_id, flow)
        # Zone -> storage, cluster -> attachment, host -> its books.
        registry.add_extension(CascadeParticipant, PrimaryStorageService)
        registry.add_extension(CascadeParticipant, PrimaryStorageCapacityService)
        registry.add_extension(HostConnectExtension, PrimaryStorageService)
        registry.add_extension(HostAllocatorFilter, PrimaryStorageCapacityService)
        for resource in queryables():
            registry.add_queryable(resource)
        for resource_name, field_name, expansion in FOREIGN_EXPANSIONS:
            registry.add_query_expansion(resource_name, field_name, expansion)
        for resource_name, alias, path in FOREIGN_ALIASES:
            registry.add_query_alias(resource_name, alias, path)


plugin = _Plugin()
