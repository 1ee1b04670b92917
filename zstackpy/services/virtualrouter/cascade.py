"""Routers in the cascade of an L3 network's delete: the router serving it (its guest
network), and the routers with their management or public NIC on it, go with it, each
in its guest network's router queue (``DestroyVirtualRouterMsg``), once the delete has
ended: a router's delete releases its addresses, which waits for the L3 the delete holds
(the VM cascade meanwhile detaches its NIC on the network, as any VM's)."""

from __future__ import annotations

from sqlalchemy import or_, select

from zstackpy.core.cascade import CascadeChildren, DeleteMode
from zstackpy.core.service import Service
from zstackpy.services.virtualrouter.messages import DestroyVirtualRouterMsg
from zstackpy.services.virtualrouter.models import ApplianceVmVO

L3_TYPE = "L3NetworkVO"
ROUTERS = "ApplianceVmVO"


class VirtualRouterCascade(Service):
    """The virtual-router domain's CascadeParticipant; handles no messages itself."""

    name = "virtualRouterCascade"

    async def cascade_children(
        self, parent_type: str, parent_uuids: tuple[str, ...]
    ) -> CascadeChildren | None:
        if parent_type != L3_TYPE:
            return None
        async with self.ctx.db.session() as session:
            rows = await session.execute(
                select(ApplianceVmVO.uuid).where(
                    or_(
                        ApplianceVmVO.guest_l3_network_uuid.in_(parent_uuids),
                        ApplianceVmVO.public_network_uuid.in_(parent_uuids),
                        ApplianceVmVO.management_network_uuid.in_(parent_uuids),
                    )
                )
            )
            return CascadeChildren(ROUTERS, tuple(rows.scalars()))

    async def cascade_check(self, children: CascadeChildren) -> None:
        """Routers never refuse: they serve their networks, not the other way round."""

    async def cascade_delete(self, children: CascadeChildren, mode: DeleteMode) -> None:
        if children.resource_type != ROUTERS:
            return
        async with self.ctx.db.session() as session:
            rows = await session.execute(
                select(ApplianceVmVO.guest_l3_network_uuid).where(
                    ApplianceVmVO.uuid.in_(children.uuids)
                )
            )
            guests = list(rows.scalars())
        for l3_uuid in guests:
            await self.ctx.bus.send(DestroyVirtualRouterMsg(l3_network_uuid=l3_uuid))
