"""What load balancers follow: deleting a VIP deletes its load balancers (off their
router first), disabling it takes them off their router (enabling puts them back), and a
NIC whose VM is destroyed on its host, or that is deleted (its VM expunged, whatever its
state, or the NIC detached), leaves every listener (a stop keeps it, as ZStack's backends
stay). Each change goes to the load balancer's service, which makes it in the load
balancer's queue."""

from __future__ import annotations

from sqlalchemy import select

from zstackpy.core.cascade import CascadeChildren, DeleteMode
from zstackpy.core.service import Service
from zstackpy.services.loadbalancer.messages import (
    LOAD_BALANCER_TYPE,
    ApplyVipStateToLoadBalancerMsg,
    DeleteLoadBalancerMsg,
    DropLoadBalancerNicsMsg,
)
from zstackpy.services.loadbalancer.models import LoadBalancerVO
from zstackpy.services.networkservice.vip_users import each_or_none
from zstackpy.services.vip.extensions import VipStateChange
from zstackpy.services.vip.messages import VIP_TYPE
from zstackpy.services.vm.extensions import VmNicsDeletion, VmPlacementEvent

# A VM destroyed on its host takes its NICs out of their listeners at once; NICs that are
# deleted (expunged, detached) leave them whatever their VM's state (vm_nics_deleting).
_LEAVING = frozenset({"destroy"})


class LoadBalancerFollower(Service):
    """The load balancers' CascadeParticipant, VmPlacementExtension,
    VmNicDeletionExtension and VipStateExtension; handles no messages itself."""

    name = "loadBalancerFollower"

    async def vm_arriving(self, event: VmPlacementEvent) -> None:
        return None

    async def vm_arrived(self, event: VmPlacementEvent) -> None:
        return None

    async def vm_left(self, event: VmPlacementEvent) -> None:
        if event.cause in _LEAVING and event.nics:
            await self._drop([n.uuid for n in event.nics])

    async def vm_nics_deleting(self, event: VmNicsDeletion) -> None:
        """Off the router before the rows go (their foreign keys would drop the
        memberships from the database alone): a router that refuses fails the expunge or
        detach."""
        await self._drop(list(event.nic_uuids))

    async def _drop(self, nic_uuids: list[str]) -> None:
        reply = await self.ctx.bus.call(DropLoadBalancerNicsMsg(vm_nic_uuids=nic_uuids))
        reply.raise_if_error()

    async def follow_vip_state(self, change: VipStateChange) -> None:
        async with self.ctx.db.session() as session:
            rows = await session.execute(
                select(LoadBalancerVO.uuid).where(LoadBalancerVO.vip_uuid == change.vip_uuid)
            )
            uuids = sorted(rows.scalars())
        await each_or_none(
            self.ctx,
            [ApplyVipStateToLoadBalancerMsg(uuid=u, vip_enabled=change.enabled) for u in uuids],
            [ApplyVipStateToLoadBalancerMsg(uuid=u, vip_enabled=not change.enabled) for u in uuids],
        )

    async def cascade_children(
        self, parent_type: str, parent_uuids: tuple[str, ...]
    ) -> CascadeChildren | None:
        if parent_type != VIP_TYPE:
            return None
        async with self.ctx.db.session() as session:
            rows = await session.execute(
                select(LoadBalancerVO.uuid).where(LoadBalancerVO.vip_uuid.in_(parent_uuids))
            )
            return CascadeChildren(LOAD_BALANCER_TYPE, tuple(rows.scalars()))

    async def cascade_check(self, children: CascadeChildren) -> None:
        return None

    async def cascade_delete(self, children: CascadeChildren, mode: DeleteMode) -> None:
        replies = await self.ctx.bus.call_many(
            [DeleteLoadBalancerMsg(uuid=u) for u in children.uuids], parallelism=8
        )
        for reply in replies:
            reply.raise_if_error()
