"""The network-service plugin: providers, their attachment to L3 networks, and the
fan-out of VM placements and host reconnects to them. Providers themselves are plugins
(flat, securityGroup; a virtual router later)."""

from __future__ import annotations

from zstackpy.core.plugin import PluginRegistry
from zstackpy.services.host.extensions import HostConnectExtension
from zstackpy.services.networkservice.errors import ERROR_STATUSES
from zstackpy.services.networkservice.query import register_queries
from zstackpy.services.networkservice.service import NetworkServiceService
from zstackpy.services.vm.extensions import VmPlacementExtension


class _Plugin:
    name = "networkService"

    def setup(self, registry: PluginRegistry) -> None:
        registry.add_service(NetworkServiceService)
        registry.add_extension(VmPlacementExtension, NetworkServiceService)
        registry.add_extension(HostConnectExtension, NetworkServiceService)
        register_queries(registry)
        for code, status in ERROR_STATUSES.items():
            registry.add_error_status(code, status)


plugin = _Plugin()
