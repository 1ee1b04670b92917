"""The virtual-router plugin: offerings, routers (appliance VMs) and the ``VirtualRouter``
network-service provider."""

from __future__ import annotations

from zstackpy.core.cascade import CascadeParticipant
from zstackpy.core.plugin import PluginRegistry
from zstackpy.services.eip.extensions import EipBackend
from zstackpy.services.loadbalancer.extensions import LoadBalancerBackend
from zstackpy.services.networkservice.extensions import NetworkServiceProviderBackend
from zstackpy.services.portforwarding.extensions import PortForwardingBackend
from zstackpy.services.virtualrouter.cascade import VirtualRouterCascade
from zstackpy.services.virtualrouter.configs import VR_CONFIGS
from zstackpy.services.virtualrouter.flows import ROUTER_FLOWS
from zstackpy.services.virtualrouter.messages import VirtualRouterErr
from zstackpy.services.virtualrouter.provider import VirtualRouterProvider
from zstackpy.services.virtualrouter.query import register_queries
from zstackpy.services.virtualrouter.service import VirtualRouterService

ERROR_STATUSES = {
    VirtualRouterErr.NO_OFFERING: 409,
    VirtualRouterErr.BAD_OFFERING: 400,
    VirtualRouterErr.NOT_CONNECTED: 503,
}


class _Plugin:
    name = "virtualRouter"

    def setup(self, registry: PluginRegistry) -> None:
        registry.add_service(VirtualRouterService)
        registry.add_service(VirtualRouterProvider)
        registry.add_service(VirtualRouterCascade)
        registry.add_extension(CascadeParticipant, VirtualRouterCascade)
        registry.add_extension(NetworkServiceProviderBackend, VirtualRouterProvider)
        registry.add_extension(EipBackend, VirtualRouterProvider)
        registry.add_extension(PortForwardingBackend, VirtualRouterProvider)
        registry.add_extension(LoadBalancerBackend, VirtualRouterProvider)
        for flow_id, flow in ROUTER_FLOWS.items():
            registry.add_flow(flow_id, flow)
        for definition in VR_CONFIGS:
            registry.add_global_config(definition)
        register_queries(registry)
        for code, status in ERROR_STATUSES.items():
            registry.add_error_status(code, status)


plugin = _Plugin()
