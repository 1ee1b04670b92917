"""The vmInstance plugin: registers the domain's services, flows, queryables and hooks."""

from __future__ import annotations

from zstackpy.core.cascade import CascadeParticipant
from zstackpy.core.membership import NodeTakeover
from zstackpy.core.plugin import PluginRegistry
from zstackpy.services.host.extensions import HostPingExtension
from zstackpy.services.vm.cascade import VmCascadeService
from zstackpy.services.vm.configs import VM_CONFIGS
from zstackpy.services.vm.create_flows import CREATE_FLOWS
from zstackpy.services.vm.create_spec import VM_TAG_PATTERNS
from zstackpy.services.vm.messages import VmErr
from zstackpy.services.vm.queryable import register_queries
from zstackpy.services.vm.service import VmService

# HTTP statuses of the errors a client can act on; the rest answer 503 like ZStack.
ERROR_STATUSES = {
    VmErr.WRONG_STATE: 409,
    VmErr.INVALID_SPEC: 400,
    VmErr.RESOURCE_NOT_READY: 409,
    VmErr.MIGRATION_REFUSED: 409,
}


class _Plugin:
    name = "vmInstance"

    def setup(self, registry: PluginRegistry) -> None:
        registry.add_service(VmService)
        registry.add_extension(NodeTakeover, VmService)
        registry.add_extension(HostPingExtension, VmService)
        registry.add_service(VmCascadeService)
        registry.add_extension(CascadeParticipant, VmCascadeService)
        for flow_id, flow in CREATE_FLOWS.items():
            registry.add_flow(flow_id, flow)
        for definition in VM_CONFIGS:
            registry.add_global_config(definition)
        for pattern in VM_TAG_PATTERNS:
            registry.add_system_tag_pattern(pattern)
        register_queries(registry)
        for code, status in ERROR_STATUSES.items():
            registry.add_error_status(code, status)


plugin = _Plugin()
