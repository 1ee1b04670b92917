"""Finding a storage type's backend, and binding agent calls for backends to use."""

from __future__ import annotations

from typing import Any

from zstackpy.core.agent import AgentEndpoint
from zstackpy.core.context import NodeContext
from zstackpy.core.errors import ZError
from zstackpy.services.host.messages import HostAgentCallMsg, HostAgentCallReply
from zstackpy.services.primary_storage.extensions import AgentCall, PrimaryStorageBackend
from zstackpy.services.primary_storage.messages import PrimaryStorageErr


def backend_for(ctx: NodeContext, storage_type: str) -> PrimaryStorageBackend:
    """The registered backend of ``storage_type``; ZError PS.1011 when no plugin serves it."""
    for backend in ctx.plugins.extensions(PrimaryStorageBackend):
        if backend.storage_type() == storage_type:
            return backend
    raise ZError(
        PrimaryStorageErr.UNKNOWN_TYPE,
        f"no plugin serves primary storage of type {storage_type!r}",
        type=storage_type,
    )


def host_local_types(ctx: NodeContext) -> frozenset[str]:
    """Types whose capacity is per host (local disks)."""
    return frozenset(
        b.storage_type() for b in ctx.plugins.extensions(PrimaryStorageBackend) if b.is_host_local()
    )


def call_through_host(ctx: NodeContext, host_uuid: str, timeout: float = 300.0) -> AgentCall:
    """Agent calls that run in the host's work queue on its owner node (HostAgentCallMsg):
    what anything outside the host's own queue must use."""

    async def call(path: str, command: dict[str, Any]) -> dict[str, Any]:
        reply = await ctx.bus.request(
            HostAgentCallMsg(host_uuid=host_uuid, path=path, command=command, timeout=timeout),
            HostAgentCallReply,
            timeout=timeout + 30,
        )
        return reply.result

    return call


def call_directly(ctx: NodeContext, endpoint: AgentEndpoint) -> AgentCall:
    """Agent calls straight to the agent: only inside the host's own queue (its connect),
    where a HostAgentCallMsg would wait behind the connect itself."""

    async def call(path: str, command: dict[str, Any]) -> dict[str, Any]:
        return await ctx.agents.call(endpoint, path, command)

    return call
