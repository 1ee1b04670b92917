"""The port-forwarding plugin: rules on VIPs over the API, applied by the provider serving
``PortForwarding`` on their NIC's network; rules go with their VIP."""

from __future__ import annotations

from zstackpy.core.cascade import CascadeParticipant
from zstackpy.core.plugin import PluginRegistry
from zstackpy.services.portforwarding.messages import PortForwardingErr
from zstackpy.services.portforwarding.query import register_queries
from zstackpy.services.portforwarding.service import PortForwardingService
from zstackpy.services.vip.extensions import VipStateExtension

ERROR_STATUSES = {
    PortForwardingErr.ALREADY_ATTACHED: 409,
    PortForwardingErr.SAME_NETWORK: 400,
    PortForwardingErr.NOT_ATTACHED: 409,
}


class _Plugin:
    name = "portForwarding"

    def setup(self, registry: PluginRegistry) -> None:
        registry.add_service(PortForwardingService)
        registry.add_extension(CascadeParticipant, PortForwardingService)
        registry.add_extension(VipStateExtension, PortForwardingService)
        register_queries(registry)
        for code, status in ERROR_STATUSES.items():
            registry.add_error_status(code, status)


plugin = _Plugin()
