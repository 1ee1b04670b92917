"""VIP handlers, each in the VIP's queue (``vip:<uuid>``) on its owner node. The address
comes from the IPAM service before the row exists and goes back after the row is gone;
services using a VIP (EIP, ...) acquire and release it; deleting a VIP deletes them first
(cascade), and VIPs go with their L3 network."""

from __future__ import annotations

import logging
from ipaddress import IPv4Network

from sqlalchemy import delete, select, update
from sqlalchemy.orm import selectinload

from zstackpy.api.messages import AuthContext
from zstackpy.api.ownership import add_resource
from zstackpy.core.bus.message import Reply
from zstackpy.core.cascade import CascadeChildren, CascadeParticipant, DeleteMode, cascade_delete
from zstackpy.core.errors import SysErr, ZError
from zstackpy.core.service import handles
from zstackpy.core.workqueue import QueueKey
from zstackpy.services.network.inventories import UsedIpInventory
from zstackpy.services.network.messages import (
    AllocateIpMsg,
    AllocateIpReply,
    GetL3NetworksMsg,
    ReleaseIpMsg,
)
from zstackpy.services.networkservice.access import require_usable
from zstackpy.services.resource_service import Change, ResourceService
from zstackpy.services.vip.api import (
    APIChangeVipStateMsg,
    APICreateVipMsg,
    APIDeleteVipMsg,
    APIUpdateVipMsg,
    VipEvent,
)
from zstackpy.services.vip.extensions import VipStateChange, VipStateExtension
from zstackpy.services.vip.messages import (
    EXCLUSIVE_USES,
    VIP_SERVICE,
    VIP_TYPE,
    AcquireVipMsg,
    AcquireVipReply,
    DeleteVipMsg,
    ReleaseVipMsg,
    VipErr,
    VipInventory,
    VipView,
)
from zstackpy.services.vip.models import VipNetworkServicesRefVO, VipVO
from zstackpy.services.vip.query import vip_inventory

log = logging.getLogger(__name__)

USED_FOR_VIP = "Vip"  # ZStack's IpAllocatedReason
_ENABLED, _DISABLED = "Enabled", "Disabled"
_L3_TYPE = "L3NetworkVO"


def vip_queue(uuid: str) -> QueueKey:
    return QueueKey("vip", uuid)


def _prefix_len(netmask: str) -> int:
    return IPv4Network(f"0.0.0.0/{netmask}").prefixlen


class VipService(ResourceService):
    name = VIP_SERVICE
    model = VipVO
    inventory = VipInventory
    resource_type = VIP_TYPE
    noun = "VIP"

    @handles(APICreateVipMsg)
    async def create(self, msg: APICreateVipMsg) -> VipEvent:
        assert msg.resource_uuid is not None  # the portal gives every create its UUID
        return await self.ctx.queues.run(vip_queue(msg.resource_uuid), self._create, msg)

    async def _create(self, msg: APICreateVipMsg) -> VipEvent:
        uuid, auth = msg.resource_uuid, msg.require_auth()
        assert uuid is not None
        async with self.ctx.db.session() as session:
            await self.refuse_duplicate(session, uuid)
        await require_usable(self.ctx, auth, [msg.l3_network_uuid], "L3 network")
        (
            await self.ctx.bus.call(GetL3NetworksMsg(l3_network_uuids=[msg.l3_network_uuid]))
        ).raise_if_error()
        reply = await self.ctx.bus.request(
            AllocateIpMsg(
                l3_network_uuid=msg.l3_network_uuid,
                required_ip=msg.required_ip,
                ip_range_uuid=msg.ip_range_uuid,
                used_for=USED_FOR_VIP,
            ),
            AllocateIpReply,
        )
        ip: UsedIpInventory | None = reply.ip
        if ip is None:
            raise ZError(SysErr.INTERNAL, "the IPAM service answered no address")
        try:
            async with self.ctx.db.session() as session, session.begin():
                session.add(
                    VipVO(
                        uuid=uuid,
                        name=msg.name,
                        description=msg.description,
                        l3_network_uuid=msg.l3_network_uuid,
                        ip=ip.ip,
                        state=_ENABLED,
                        gateway=ip.gateway,
                        netmask=ip.netmask,
                        prefix_len=_prefix_len(ip.netmask),
                        system=False,
                        used_ip_uuid=ip.uuid,
                    )
                )
                add_resource(session, uuid=uuid, resource_type=VIP_TYPE, name=msg.name, auth=auth)
        except BaseException:
            await self._release_ip(msg.l3_network_uuid, ip.uuid)
            raise
        return VipEvent(inventory=await self.answer(uuid, "created", auth))

    async def answer(self, uuid: str, change: Change, auth: AuthContext) -> VipInventory:
        """The VIP with the resources using it, after announcing the change."""
        async with self.ctx.db.session() as session:
            row = (
                await session.execute(
                    select(VipVO)
                    .options(selectinload(VipVO.services_refs))
                    .where(VipVO.uuid == uuid)
                )
            ).scalar_one_or_none()
        if row is None:
            raise ZError(SysErr.RESOURCE_NOT_FOUND, f"no VIP with uuid {uuid}", uuid=uuid)
        inventory = vip_inventory(row)
        await self._publish(uuid, change, auth, inventory.model_dump(mode="json", by_alias=True))
        return inventory

    @handles(APIUpdateVipMsg)
    async def update(self, msg: APIUpdateVipMsg) -> VipEvent:
        async def run() -> VipEvent:
            changes = msg.model_dump(
                include={"name", "description"}, exclude_none=True, by_alias=False
            )
            await self.update_fields(msg.uuid, changes)
            return VipEvent(inventory=await self.answer(msg.uuid, "updated", msg.require_auth()))

        return await self.ctx.queues.run(vip_queue(msg.uuid), run)

    @handles(APIChangeVipStateMsg)
    async def change_state_api(self, msg: APIChangeVipStateMsg) -> VipEvent:
        async def run() -> VipEvent:
            await self._change_state(msg.uuid, msg.state_event == "enable")
            return VipEvent(inventory=await self.answer(msg.uuid, "updated", msg.require_auth()))

        return await self.ctx.queues.run(vip_queue(msg.uuid), run)

    async def _change_state(self, uuid: str, enable: bool) -> None:
        """A disabled VIP keeps its services, off hosts and routers, and takes no new one
        (VIP.1002). Disabling takes them off before the row changes (a host or router
        that refuses leaves the VIP Enabled, its services back on); enabling changes the
        row first, then puts them back (a refusal leaves it Disabled, all off)."""
        async with self.ctx.db.session() as session:
            vip: VipVO = await self.require(session, uuid)
        wanted = _ENABLED if enable else _DISABLED
        if vip.state == wanted:
            return
        if enable:
            await self.update_fields(uuid, {"state": wanted})
        followed: list[VipStateExtension] = []
        try:
            for user in self.ctx.plugins.extensions(VipStateExtension):
                await user.follow_vip_state(VipStateChange(vip_uuid=uuid, enabled=enable))
                followed.append(user)
        except BaseException:
            back = VipStateChange(vip_uuid=uuid, enabled=not enable)
            for user in reversed(followed):
                try:
                    await user.follow_vip_state(back)
                except ZError as exc:
                    log.warning("VIP %s: undoing its state change failed: %s", uuid, exc)
            if enable:
                await self.update_fields(uuid, {"state": _DISABLED})
            raise
        if not enable:
            await self.update_fields(uuid, {"state": wanted})

    @handles(APIDeleteVipMsg)
    async def delete_api(self, msg: APIDeleteVipMsg) -> VipEvent:
        await self.ctx.queues.run(
            vip_queue(msg.uuid), self._delete, msg.uuid, msg.delete_mode, msg.require_auth(), True
        )
        return VipEvent()

    @handles(DeleteVipMsg)
    async def delete_internal(self, msg: DeleteVipMsg) -> Reply:
        async def run() -> None:
            async with self.ctx.db.session() as session:
                if await session.get(VipVO, msg.uuid) is None:
                    return  # gone already: a repeated cascade
            await self._delete(msg.uuid, DeleteMode.ENFORCING.value, None, False)

        await self.ctx.queues.run(vip_queue(msg.uuid), run)
        return Reply()

    async def _delete(
        self, uuid: str, mode: str, auth: AuthContext | None, release_ip: bool
    ) -> None:
        async with self.ctx.db.session() as session:
            vip: VipVO = await self.require(session, uuid)
        # Its users (an EIP, port-forwarding rules) first: each leaves its hosts in its own
        # queue, without releasing the VIP (this delete holds its queue).
        participants = self.ctx.plugins.extensions(CascadeParticipant)
        try:
            await cascade_delete(participants, VIP_TYPE, [uuid], DeleteMode(mode))
        except BaseException:
            # A host refused one user's revoke: the VIP stays, and so does that user, but
            # the users the cascade did delete must not keep their ports or use of it.
            await self._forget_gone_users(uuid, participants)
            raise
        async with self.ctx.db.session() as session, session.begin():
            await session.execute(
                delete(VipNetworkServicesRefVO).where(VipNetworkServicesRefVO.vip_uuid == uuid)
            )
        await self.remove([uuid], auth)
        if release_ip and vip.used_ip_uuid is not None:
            await self._release_ip(vip.l3_network_uuid, vip.used_ip_uuid)

    async def _forget_gone_users(self, uuid: str, participants: list[CascadeParticipant]) -> None:
        """In the VIP's queue, after its cascade failed part-way: drop the uses of the
        users that are gone (as ``release`` does for each); the rest keep theirs."""
        alive: set[str] = set()
        for member in participants:
            children = await member.cascade_children(VIP_TYPE, (uuid,))
            if children is not None:
                alive.update(children.uuids)
        async with self.ctx.db.session() as session, session.begin():
            await session.execute(
                delete(VipNetworkServicesRefVO).where(
                    VipNetworkServicesRefVO.vip_uuid == uuid,
                    VipNetworkServicesRefVO.uuid.not_in(alive),
                )
            )
            if not alive:
                await session.execute(
                    update(VipVO)
                    .where(VipVO.uuid == uuid)
                    .values(use_for=None, service_provider=None)
                )

    async def _release_ip(self, l3_uuid: str, used_ip_uuid: str) -> None:
        reply = await self.ctx.bus.call(
            ReleaseIpMsg(l3_network_uuid=l3_uuid, used_ip_uuid=used_ip_uuid)
        )
        if not reply.success:
            log.warning(
                "VIP address %s of L3 %s not released: %s", used_ip_uuid, l3_uuid, reply.error
            )

    # ----- users of a VIP ---------------------------------------------------------------

    @handles(AcquireVipMsg)
    async def acquire(self, msg: AcquireVipMsg) -> AcquireVipReply:
        return await self.ctx.queues.run(vip_queue(msg.vip_uuid), self._acquire, msg)

    async def _acquire(self, msg: AcquireVipMsg) -> AcquireVipReply:
        async with self.ctx.db.session() as session, session.begin():
            vip: VipVO = await self.require(session, msg.vip_uuid)
            refs = list(
                (
                    await session.execute(
                        select(VipNetworkServicesRefVO).where(
                            VipNetworkServicesRefVO.vip_uuid == vip.uuid,
                            VipNetworkServicesRefVO.uuid != msg.service_uuid,
                        )
                    )
                ).scalars()
            )
            _check_use(vip, refs, msg)
            if await session.get(VipNetworkServicesRefVO, msg.service_uuid) is None:
                session.add(
                    VipNetworkServicesRefVO(
                        uuid=msg.service_uuid,
                        vip_uuid=vip.uuid,
                        service_type=msg.use_for,
                        protocol=msg.protocol,
                        port_start=msg.port_start,
                        port_end=msg.port_end,
                    )
                )
            await session.execute(
                update(VipVO)
                .where(VipVO.uuid == vip.uuid)
                .values(use_for=msg.use_for, service_provider=msg.service_provider)
            )
            view = VipView(
                uuid=vip.uuid,
                l3_network_uuid=vip.l3_network_uuid,
                ip=vip.ip,
                gateway=vip.gateway,
                netmask=vip.netmask,
            )
        return AcquireVipReply(vip=view)

    @handles(ReleaseVipMsg)
    async def release(self, msg: ReleaseVipMsg) -> Reply:
        async def run() -> None:
            async with self.ctx.db.session() as session, session.begin():
                await session.execute(
                    delete(VipNetworkServicesRefVO).where(
                        VipNetworkServicesRefVO.uuid == msg.service_uuid,
                        VipNetworkServicesRefVO.vip_uuid == msg.vip_uuid,
                    )
                )
                left = await session.scalar(
                    select(VipNetworkServicesRefVO.uuid)
                    .where(VipNetworkServicesRefVO.vip_uuid == msg.vip_uuid)
                    .limit(1)
                )
                if left is None:
                    await session.execute(
                        update(VipVO)
                        .where(VipVO.uuid == msg.vip_uuid)
                        .values(use_for=None, service_provider=None)
                    )

        await self.ctx.queues.run(vip_queue(msg.vip_uuid), run)
        return Reply()

    # ----- CascadeParticipant: VIPs go with their L3 network ----------------------------

    async def cascade_children(
        self, parent_type: str, parent_uuids: tuple[str, ...]
    ) -> CascadeChildren | None:
        if parent_type != _L3_TYPE:
            return None
        async with self.ctx.db.session() as session:
            rows = await session.execute(
                select(VipVO.uuid).where(VipVO.l3_network_uuid.in_(parent_uuids))
            )
            return CascadeChildren(VIP_TYPE, tuple(rows.scalars()))

    async def cascade_check(self, children: CascadeChildren) -> None:
        return None

    async def cascade_delete(self, children: CascadeChildren, mode: DeleteMode) -> None:
        replies = await self.ctx.bus.call_many(
            [DeleteVipMsg(uuid=u) for u in children.uuids], parallelism=8
        )
        for reply in replies:
            reply.raise_if_error()


def _check_use(vip: VipVO, others: list[VipNetworkServicesRefVO], msg: AcquireVipMsg) -> None:
    """VIP.1001 when another use holds the VIP (or an exclusive one, another resource);
    VIP.1003 when another rule has some of the ports."""
    if vip.state != _ENABLED:
        raise ZError(VipErr.NOT_ENABLED, f"VIP {vip.uuid} is {vip.state}", uuid=vip.uuid)
    holders = {r.service_type for r in others}
    if holders - {msg.use_for} or (others and msg.use_for in EXCLUSIVE_USES):
        raise ZError(
            VipErr.IN_USE,
            f"VIP {vip.uuid} ({vip.ip}) is used by {', '.join(sorted(r.uuid for r in others))} "
            f"({', '.join(sorted(holders))})",
            uuid=vip.uuid,
            useFor=sorted(holders),
        )
    if msg.protocol is None or msg.port_start is None or msg.port_end is None:
        return
    for ref in others:
        if (
            ref.protocol == msg.protocol
            and ref.port_start is not None
            and ref.port_end is not None
            and ref.port_start <= msg.port_end
            and msg.port_start <= ref.port_end
        ):
            raise ZError(
                VipErr.PORT_IN_USE,
                f"{msg.protocol} ports {ref.port_start}-{ref.port_end} of VIP {vip.ip} are "
                f"used by {ref.uuid}",
                uuid=vip.uuid,
                protocol=msg.protocol,
                usedBy=ref.uuid,
            )
