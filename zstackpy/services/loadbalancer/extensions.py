"""How a network-service provider applies load balancers (``LoadBalancerBackend``): the
load-balancer service calls the backend of the provider serving ``LoadBalancer`` on the
backend NICs' L3 network whenever a load balancer with backends changes."""

from __future__ import annotations

from typing import Protocol

from zstackpy.services.loadbalancer.messages import LoadBalancerTO


class LoadBalancerBackend(Protocol):
    def provider_type(self) -> str: ...

    async def refresh_load_balancer(self, l3_network_uuid: str, lb: LoadBalancerTO) -> None:
        """Make what serves ``l3_network_uuid`` hold ``lb`` exactly as given (every listener
        and backend); raise ZError when it refuses."""
        ...

    async def delete_load_balancer(self, l3_network_uuid: str, lb: LoadBalancerTO) -> None:
        """Take ``lb`` off; succeeds when it is not there."""
        ...
