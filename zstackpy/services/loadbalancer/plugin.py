"""The load-balancer plugin: load balancers on VIPs, their listeners and backends, applied
by the provider serving ``LoadBalancer`` on the backends' network (the virtual router)."""

from __future__ import annotations

from zstackpy.core.cascade import CascadeParticipant
from zstackpy.core.plugin import PluginRegistry
from zstackpy.services.loadbalancer.cascade import LoadBalancerFollower
from zstackpy.services.loadbalancer.messages import LoadBalancerErr
from zstackpy.services.loadbalancer.query import register_queries
from zstackpy.services.loadbalancer.service import LoadBalancerService
from zstackpy.services.vip.extensions import VipStateExtension
from zstackpy.services.vm.extensions import VmNicDeletionExtension, VmPlacementExtension

ERROR_STATUSES = {
    LoadBalancerErr.PORT_TAKEN: 409,
    LoadBalancerErr.OTHER_NETWORK: 400,
    LoadBalancerErr.NIC_UNUSABLE: 400,
}


class _Plugin:
    name = "loadBalancer"

    def setup(self, registry: PluginRegistry) -> None:
        registry.add_service(LoadBalancerService)
        registry.add_service(LoadBalancerFollower)
        registry.add_extension(CascadeParticipant, LoadBalancerFollower)
        registry.add_extension(VmPlacementExtension, LoadBalancerFollower)
        registry.add_extension(VmNicDeletionExtension, LoadBalancerFollower)
        registry.add_extension(VipStateExtension, LoadBalancerFollower)
        register_queries(registry)
        for code, status in ERROR_STATUSES.items():
            registry.add_error_status(code, status)


plugin = _Plugin()
