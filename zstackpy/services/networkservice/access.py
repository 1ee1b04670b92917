"""Whether the caller may use the resources a network-service request names besides its
own (the VIP of an EIP, the NIC it goes to, the L3 network a group is attached to): a
normal account only its own, as the API portal checks the resource a request is about.
What the caller may not use answers exactly like what does not exist (SYS.1003)."""

from __future__ import annotations

from collections.abc import Iterable

from zstackpy.api.messages import AuthContext
from zstackpy.api.ownership import may_use
from zstackpy.core.context import NodeContext
from zstackpy.core.errors import SysErr, ZError


async def require_usable(
    ctx: NodeContext, auth: AuthContext, uuids: Iterable[str | None], noun: str
) -> None:
    wanted = sorted({u for u in uuids if u is not None})
    if not wanted or auth.is_admin:
        return
    async with ctx.db.session() as session:
        refused = [u for u in wanted if not await may_use(session, u, auth)]
    if refused:
        raise ZError(
            SysErr.RESOURCE_NOT_FOUND,
            f"no {noun} with uuid {', '.join(refused)}",
            uuids=refused,
        )
