"""Reading virtual routers: the router of a guest L3 network, as the node reaches it."""

from __future__ import annotations

import logging

from sqlalchemy import select, update

from zstackpy.core.context import NodeContext
from zstackpy.core.errors import ZError
from zstackpy.core.workqueue import QueueKey
from zstackpy.services.virtualrouter import agent
from zstackpy.services.virtualrouter.messages import (
    ApplianceStatus,
    GetVirtualRouterMsg,
    GetVirtualRouterReply,
    RouterView,
)
from zstackpy.services.virtualrouter.models import ApplianceVmVO
from zstackpy.services.vm.models import VmInstanceVO, VmNicVO

log = logging.getLogger(__name__)

ROUTER_TIMEOUT_S = 900.0


def router_queue(l3_uuid: str) -> QueueKey:
    """Every change of the router serving ``l3_uuid`` runs here, on the L3's owner node."""
    return QueueKey("virtual-router", l3_uuid)


async def record_of(ctx: NodeContext, l3_uuid: str) -> tuple[ApplianceVmVO, str] | None:
    """The router's record and its VM's state, if the L3 has a router."""
    async with ctx.db.session() as session:
        row = (
            await session.execute(
                select(ApplianceVmVO, VmInstanceVO.state)
                .join(VmInstanceVO, VmInstanceVO.uuid == ApplianceVmVO.uuid)
                .where(ApplianceVmVO.guest_l3_network_uuid == l3_uuid)
            )
        ).one_or_none()
    return None if row is None else (row[0], row[1])


async def view_of(ctx: NodeContext, record: ApplianceVmVO) -> RouterView | None:
    """How to reach the router and what it holds its networks with; None when its VM
    lacks a NIC it needs (a network was deleted under it)."""
    async with ctx.db.session() as session:
        nics = list(
            (
                await session.execute(
                    select(VmNicVO).where(VmNicVO.vm_instance_uuid == record.uuid)
                )
            ).scalars()
        )
    by_l3 = {n.l3_network_uuid: n for n in nics}
    management = by_l3.get(record.management_network_uuid)
    public = by_l3.get(record.public_network_uuid)
    guest = by_l3.get(record.guest_l3_network_uuid)
    if management is None or public is None or guest is None:
        return None
    if management.ip is None or public.ip is None or guest.ip is None:
        return None
    return RouterView(
        uuid=record.uuid,
        guest_l3_network_uuid=record.guest_l3_network_uuid,
        management_ip=management.ip,
        agent_port=record.agent_port,
        token=record.token,
        public_ip=public.ip,
        public_mac=public.mac,
        public_netmask=public.netmask or "",
        public_gateway=public.gateway or "",
        guest_ip=guest.ip,
        guest_mac=guest.mac,
        guest_netmask=guest.netmask or "",
        guest_gateway=guest.gateway or "",
    )


async def set_status(ctx: NodeContext, uuid: str, status: ApplianceStatus) -> None:
    async with ctx.db.session() as session, session.begin():
        await session.execute(
            update(ApplianceVmVO).where(ApplianceVmVO.uuid == uuid).values(status=status.value)
        )


async def vm_kind(ctx: NodeContext, vm_uuid: str) -> tuple[str | None, str | None]:
    """The VM's type and state (None, None when its row is gone)."""
    async with ctx.db.session() as session:
        row = (
            await session.execute(
                select(VmInstanceVO.type, VmInstanceVO.state).where(VmInstanceVO.uuid == vm_uuid)
            )
        ).one_or_none()
    return (None, None) if row is None else (row[0], row[1])


async def answers(ctx: NodeContext, router: RouterView, timeout: float) -> bool:  # noqa: ASYNC109 -- the ping's own bound
    """Whether the router's agent answers a ping within ``timeout`` s."""
    try:
        await agent.call(ctx, router, agent.PING, {"uuid": router.uuid}, timeout=timeout)
    except ZError as exc:
        log.warning("virtual router %s does not answer: %s", router.uuid, exc.description)
        return False
    return True


async def router_for(
    ctx: NodeContext, l3_uuid: str, *, ensure: bool = True, unreachable: bool = False
) -> RouterView | None:
    """The Connected router of ``l3_uuid`` (made or brought back first when ``ensure``;
    ``unreachable``: the caller could not reach the one it was given); raises ZError VR.*
    when it cannot be."""
    reply = await ctx.bus.request(
        GetVirtualRouterMsg(l3_network_uuid=l3_uuid, ensure=ensure, unreachable=unreachable),
        GetVirtualRouterReply,
        # Making a router is a VM creation (image copy included) plus its agent's boot.
        timeout=ROUTER_TIMEOUT_S,
    )
    return reply.router
