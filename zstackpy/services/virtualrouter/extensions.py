"""What other plugins may implement about virtual routers."""

from __future__ import annotations

from typing import Protocol

from zstackpy.services.virtualrouter.messages import RouterView


class RouterConfigured(Protocol):
    """Called in the router's queue when a router (new, or booted again) has been sent
    its NICs and the provider's tables: send it what else it serves (load balancers).
    Raise ZError to fail the connect (the router stays Disconnected)."""

    async def router_configured(self, router: RouterView) -> None: ...
