"""The EIP plugin: EIPs over the API, NATed by the provider serving ``Eip`` on their NIC's
network; EIPs go with their VIP."""

from __future__ import annotations

from zstackpy.core.cascade import CascadeParticipant
from zstackpy.core.plugin import PluginRegistry
from zstackpy.services.eip.messages import EipErr
from zstackpy.services.eip.query import register_queries
from zstackpy.services.eip.service import EipService
from zstackpy.services.vip.extensions import VipStateExtension

ERROR_STATUSES = {
    EipErr.ALREADY_ATTACHED: 409,
    EipErr.SAME_NETWORK: 400,
    EipErr.NIC_HAS_EIP: 409,
    EipErr.NOT_ATTACHED: 409,
}


class _Plugin:
    name = "eip"

    def setup(self, registry: PluginRegistry) -> None:
        registry.add_service(EipService)
        registry.add_extension(CascadeParticipant, EipService)
        registry.add_extension(VipStateExtension, EipService)
        register_queries(registry)
        for code, status in ERROR_STATUSES.items():
            registry.add_error_status(code, status)


plugin = _Plugin()
