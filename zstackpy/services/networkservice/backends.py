"""Which plugin serves a network service on an L3 network: the provider attached for that
service (AttachNetworkServiceToL3Network) and, among the node's extensions of a service's
backend point (EipBackend, PortForwardingBackend, ...), the one of that provider."""

from __future__ import annotations

from typing import Protocol, TypeVar

from zstackpy.core.context import NodeContext
from zstackpy.core.errors import SysErr, ZError
from zstackpy.services.networkservice.errors import NetworkServiceErr
from zstackpy.services.networkservice.messages import (
    GetL3NetworkServicesMsg,
    GetL3NetworkServicesReply,
)


class ProviderBackend(Protocol):
    def provider_type(self) -> str: ...


B = TypeVar("B", bound=ProviderBackend)


async def backend_for(
    ctx: NodeContext, l3_uuid: str, service_type: str, point: type[B], what: str
) -> B:
    """The ``point`` extension serving ``service_type`` on ``l3_uuid``. Raises NS.1005
    when the L3 has no provider for the service, and SysErr.OPERATION when this node has
    no plugin for the provider (``what`` names the backend in that error)."""
    services = await ctx.bus.request(
        GetL3NetworkServicesMsg(l3_network_uuids=[l3_uuid]), GetL3NetworkServicesReply
    )
    provider = services.provider_of(l3_uuid, service_type)
    if provider is None:
        raise ZError(
            NetworkServiceErr.NOT_ENABLED,
            f"L3 network {l3_uuid} has no {service_type} network service: attach one first",
            l3NetworkUuid=l3_uuid,
            networkServiceType=service_type,
        )
    for backend in ctx.plugins.extensions(point):
        if backend.provider_type() == provider:
            return backend
    raise ZError(
        SysErr.OPERATION,
        f"no {what} backend for provider {provider} on this node",
        provider=provider,
    )
