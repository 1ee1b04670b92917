"""VIP handlers, each in the VIP's queue (``vip:<uuid>``) on its owner node. The address
comes from the IPAM service before the row exists and goes back after the row is gone;
services using a VIP (EIP, ...) acquire and release it; deleting a VIP deletes them first
(cascade), and VIPs go with their L3 network."""

from __future__ import annotations

import logging
from ipaddress import IPv4Network

from sqlalchemy import select, update

from zstackpy.api.messages import AuthContext
from zstackpy.api.ownership import add_resource
from zstackpy.core.bus.message import Reply
from zstackpy.core.cascade import CascadeChildren, DeleteMode
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
from zstackpy.services.resource_service import ResourceService
from zstackpy.services.vip.api import APICreateVipMsg, APIDeleteVipMsg, APIUpdateVipMsg, VipEvent
from zstackpy.services.vip.messages import (
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
from zstackpy.services.vip.models import VipVO

log = logging.getLogger(__name__)

USED_FOR_VIP = "Vip"  # ZStack's IpAllocatedReason
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
                        state="Enabled",
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

    @handles(APIUpdateVipMsg)
    async def update(self, msg: APIUpdateVipMsg) -> VipEvent:
        async def run() -> VipEvent:
            changes = msg.model_dump(
                include={"name", "description"}, exclude_none=True, by_alias=False
            )
            await self.update_fields(msg.uuid, changes)
            return VipEvent(inventory=await self.answer(msg.uuid, "updated", msg.require_auth()))

        return await self.ctx.queues.run(vip_queue(msg.uuid), run)

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
        # Its users (an EIP) first: each leaves its hosts in its own queue.
        await self.delete_with_children(uuid, mode, auth)
        if release_ip and vip.used_ip_uuid is not None:
            await self._release_ip(vip.l3_network_uuid, vip.used_ip_uuid)

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
        async def run() -> AcquireVipReply:
            async with self.ctx.db.session() as session, session.begin():
                vip: VipVO = await self.require(session, msg.vip_uuid)
                if vip.use_for not in (None, msg.use_for):
                    raise ZError(
                        VipErr.IN_USE,
                        f"VIP {vip.uuid} ({vip.ip}) is used for {vip.use_for}",
                        uuid=vip.uuid,
                        useFor=vip.use_for,
                    )
                if vip.state != "Enabled":
                    raise ZError(
                        VipErr.NOT_ENABLED, f"VIP {vip.uuid} is {vip.state}", uuid=vip.uuid
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

        return await self.ctx.queues.run(vip_queue(msg.vip_uuid), run)

    @handles(ReleaseVipMsg)
    async def release(self, msg: ReleaseVipMsg) -> Reply:
        async def run() -> None:
            async with self.ctx.db.session() as session, session.begin():
                await session.execute(
                    update(VipVO)
                    .where(VipVO.uuid == msg.vip_uuid, VipVO.use_for == msg.use_for)
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
