"""The network plugin: L2 and L3 networks, IP ranges, IPAM; their queries; the cascade,
host-connect and host-allocator hooks."""

from __future__ import annotations

from zstackpy.core.cascade import CascadeParticipant
from zstackpy.core.plugin import PluginRegistry
from zstackpy.services.host.extensions import HostAllocatorFilter, HostConnectExtension
from zstackpy.services.network.errors import ERROR_STATUSES
from zstackpy.services.network.ipam.service import IpamService
from zstackpy.services.network.l2.service import L2NetworkService
from zstackpy.services.network.l3.range_service import IpRangeService
from zstackpy.services.network.l3.service import L3NetworkService
from zstackpy.services.network.query import register_queries


class _Plugin:
    name = "network"

    def setup(self, registry: PluginRegistry) -> None:
        registry.add_service(L2NetworkService)
        registry.add_service(L3NetworkService)
        registry.add_service(IpRangeService)
        registry.add_service(IpamService)
        # Zones delete L2s, L2s delete L3s, clusters detach L2s.
        registry.add_extension(CascadeParticipant, L2NetworkService)
        registry.add_extension(CascadeParticipant, L3NetworkService)
        registry.add_extension(HostConnectExtension, L2NetworkService)
        registry.add_extension(HostAllocatorFilter, L2NetworkService)
        register_queries(registry)
        for code, status in ERROR_STATUSES.items():
            registry.add_error_status(code, status)


plugin = _Plugin()
