"""EIP handlers, each in the EIP's queue (``eip:<uuid>``) on its owner node.

An EIP holds its VIP (acquired for "Eip"). Attached to a NIC whose VM is on a host, it is
NATed there by the provider serving ``Eip`` on the NIC's L3 network (``EipBackend``); the
provider follows the VM itself when it starts, stops or migrates. An attach or detach the
host refuses is undone: the EIP stays as it was and the API answers the host's error. A
host that is not Connected refuses nothing: its reconnect sends it its whole NAT table.
"""

from __future__ import annotations

import logging

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from zstackpy.api.messages import AuthContext
from zstackpy.api.ownership import add_resource
from zstackpy.core.bus.message import Reply
from zstackpy.core.cascade import CascadeChildren, DeleteMode
from zstackpy.core.errors import SysErr, ZError
from zstackpy.core.service import handles
from zstackpy.core.workqueue import QueueKey
from zstackpy.services.eip.api import (
    APIAttachEipMsg,
    APIChangeEipStateMsg,
    APICreateEipMsg,
    APIDeleteEipMsg,
    APIDetachEipMsg,
    APIGetEipAttachableVmNicsMsg,
    APIGetEipAttachableVmNicsReply,
    APIUpdateEipMsg,
    EipEvent,
)
from zstackpy.services.eip.extensions import EipBackend, EipOnHost
from zstackpy.services.eip.messages import (
    EIP_SERVICE,
    EIP_TYPE,
    DeleteEipMsg,
    EipErr,
    EipInventory,
    EipView,
    GetNicEipsMsg,
    GetNicEipsReply,
)
from zstackpy.services.eip.models import EipVO
from zstackpy.services.host.messages import HostErr
from zstackpy.services.network.models import NetworkServiceL3NetworkRefVO
from zstackpy.services.networkservice.access import require_usable
from zstackpy.services.networkservice.backends import backend_for
from zstackpy.services.networkservice.candidates import candidate_nics
from zstackpy.services.networkservice.extensions import EIP
from zstackpy.services.networkservice.nics import NicPlace, nic_place
from zstackpy.services.resource_service import ResourceService
from zstackpy.services.vip.messages import (
    VIP_TYPE,
    AcquireVipMsg,
    AcquireVipReply,
    ReleaseVipMsg,
    VipErr,
)
from zstackpy.services.vip.models import VipVO
from zstackpy.services.vm.models import VmNicVO

log = logging.getLogger(__name__)

EIP_ENABLED, EIP_DISABLED = "Enabled", "Disabled"

USE_FOR = "Eip"


def _vip_taken(vip_uuid: str, holder: str | None) -> ZError:
    return ZError(
        VipErr.IN_USE,
        f"VIP {vip_uuid} is used by EIP {holder or 'another EIP'}",
        uuid=vip_uuid,
        eipUuid=holder,
    )


def eip_queue(uuid: str) -> QueueKey:
    return QueueKey("eip", uuid)


class EipService(ResourceService):
    name = EIP_SERVICE
    model = EipVO
    inventory = EipInventory
    resource_type = EIP_TYPE
    noun = "EIP"

    # ----- create, delete ----------------------------------------------------------------

    @handles(APICreateEipMsg)
    async def create(self, msg: APICreateEipMsg) -> EipEvent:
        assert msg.resource_uuid is not None  # the portal gives every create its UUID
        return await self.ctx.queues.run(eip_queue(msg.resource_uuid), self._create, msg)

    async def _create(self, msg: APICreateEipMsg) -> EipEvent:
        uuid, auth = msg.resource_uuid, msg.require_auth()
        assert uuid is not None
        await require_usable(self.ctx, auth, [msg.vip_uuid], "VIP")
        await require_usable(self.ctx, auth, [msg.vm_nic_uuid], "VM NIC")
        async with self.ctx.db.session() as session:
            await self.refuse_duplicate(session, uuid)
            holder = await session.scalar(select(EipVO.uuid).where(EipVO.vip_uuid == msg.vip_uuid))
        if holder is not None:
            raise _vip_taken(msg.vip_uuid, holder)
        reply = await self.ctx.bus.request(
            AcquireVipMsg(vip_uuid=msg.vip_uuid, use_for=USE_FOR, service_uuid=uuid),
            AcquireVipReply,
        )
        assert reply.vip is not None
        try:
            async with self.ctx.db.session() as session, session.begin():
                session.add(
                    EipVO(
                        uuid=uuid,
                        name=msg.name,
                        description=msg.description,
                        vip_uuid=msg.vip_uuid,
                        state="Enabled",
                        vip_ip=reply.vip.ip,
                    )
                )
                add_resource(session, uuid=uuid, resource_type=EIP_TYPE, name=msg.name, auth=auth)
        except IntegrityError:
            # Another EIP took the VIP meanwhile: it is theirs, release nothing.
            raise _vip_taken(msg.vip_uuid, None) from None
        if msg.vm_nic_uuid is not None:
            try:
                await self._attach(uuid, msg.vm_nic_uuid)
            except BaseException:
                await self._forget(uuid, msg.vip_uuid)
                raise
        return EipEvent(inventory=await self.answer(uuid, "created", auth))

    async def _forget(self, uuid: str, vip_uuid: str) -> None:
        """Undo a create: the row (if made) and the VIP's use."""
        try:
            async with self.ctx.db.session() as session:
                made = await session.get(EipVO, uuid) is not None
            if made:
                await self.remove([uuid], None)
            (
                await self.ctx.bus.call(ReleaseVipMsg(vip_uuid=vip_uuid, service_uuid=uuid))
            ).raise_if_error()
        except ZError as exc:
            log.warning("EIP %s: undoing its create failed: %s", uuid, exc)

    @handles(APIUpdateEipMsg)
    async def update(self, msg: APIUpdateEipMsg) -> EipEvent:
        async def run() -> EipEvent:
            changes = msg.model_dump(
                include={"name", "description"}, exclude_none=True, by_alias=False
            )
            await self.update_fields(msg.uuid, changes)
            return EipEvent(inventory=await self.answer(msg.uuid, "updated", msg.require_auth()))

        return await self.ctx.queues.run(eip_queue(msg.uuid), run)

    @handles(APIDeleteEipMsg)
    async def delete_api(self, msg: APIDeleteEipMsg) -> EipEvent:
        auth = msg.require_auth()
        await self.ctx.queues.run(eip_queue(msg.uuid), self._delete, msg.uuid, auth, True)
        return EipEvent()

    @handles(DeleteEipMsg)
    async def delete_internal(self, msg: DeleteEipMsg) -> Reply:
        async def run() -> None:
            async with self.ctx.db.session() as session:
                if await session.get(EipVO, msg.uuid) is None:
                    return
            await self._delete(msg.uuid, None, False)

        await self.ctx.queues.run(eip_queue(msg.uuid), run)
        return Reply()

    async def _delete(self, uuid: str, auth: AuthContext | None, release_vip: bool) -> None:
        async with self.ctx.db.session() as session:
            eip: EipVO = await self.require(session, uuid)
        if eip.vm_nic_uuid is not None:
            await self._detach(eip)
        await self.remove([uuid], auth)
        if not release_vip:
            return
        reply = await self.ctx.bus.call(ReleaseVipMsg(vip_uuid=eip.vip_uuid, service_uuid=uuid))
        if not reply.success:
            log.warning("EIP %s: releasing VIP %s failed: %s", uuid, eip.vip_uuid, reply.error)

    # ----- attach, detach ----------------------------------------------------------------

    @handles(APIAttachEipMsg)
    async def attach(self, msg: APIAttachEipMsg) -> EipEvent:
        async def run() -> EipEvent:
            await require_usable(self.ctx, msg.require_auth(), [msg.vm_nic_uuid], "VM NIC")
            await self._attach(msg.eip_uuid, msg.vm_nic_uuid)
            return EipEvent(
                inventory=await self.answer(msg.eip_uuid, "updated", msg.require_auth())
            )

        return await self.ctx.queues.run(eip_queue(msg.eip_uuid), run)

    async def _attach(self, uuid: str, nic_uuid: str) -> None:
        async with self.ctx.db.session() as session:
            eip: EipVO = await self.require(session, uuid)
            vip = await session.get(VipVO, eip.vip_uuid)
            taken = await session.scalar(select(EipVO.uuid).where(EipVO.vm_nic_uuid == nic_uuid))
        if eip.vm_nic_uuid is not None:
            raise ZError(
                EipErr.ALREADY_ATTACHED,
                f"EIP {uuid} is attached to NIC {eip.vm_nic_uuid}: detach it first",
                uuid=uuid,
                vmNicUuid=eip.vm_nic_uuid,
            )
        if taken is not None:
            raise ZError(
                EipErr.NIC_HAS_EIP,
                f"NIC {nic_uuid} already has EIP {taken}",
                vmNicUuid=nic_uuid,
                eipUuid=taken,
            )
        place = await nic_place(self.ctx, nic_uuid)
        if vip is not None and vip.l3_network_uuid == place.nic.l3_network_uuid:
            raise ZError(
                EipErr.SAME_NETWORK,
                f"NIC {nic_uuid} is on the VIP's own L3 network {vip.l3_network_uuid}",
                vmNicUuid=nic_uuid,
                l3NetworkUuid=vip.l3_network_uuid,
            )
        backend = await self._backend(place.nic.l3_network_uuid)
        async with self.ctx.db.session() as session, session.begin():
            await session.execute(
                update(EipVO)
                .where(EipVO.uuid == uuid)
                .values(vm_nic_uuid=nic_uuid, guest_ip=place.nic.ip)
            )
        if eip.state != EIP_ENABLED:
            return  # attached, but off the host until it is enabled
        try:
            await self._apply(uuid, place, backend)
        except BaseException:
            await self._set_nic(uuid, None, None)
            raise

    async def _apply(self, uuid: str, place: NicPlace, backend: EipBackend) -> None:
        """Put the EIP on the NIC's host (none when the VM runs nowhere)."""
        if place.host is None:
            return
        try:
            await backend.apply_eip(await self._on_host(uuid, place))
        except ZError as exc:
            if exc.code != HostErr.WRONG_STATE:
                raise
            # The host is not Connected: its reconnect puts the EIP there.

    @handles(APIDetachEipMsg)
    async def detach(self, msg: APIDetachEipMsg) -> EipEvent:
        async def run() -> EipEvent:
            async with self.ctx.db.session() as session:
                eip: EipVO = await self.require(session, msg.uuid)
            if eip.vm_nic_uuid is None:
                raise ZError(EipErr.NOT_ATTACHED, f"EIP {msg.uuid} is not attached", uuid=msg.uuid)
            await self._detach(eip)
            return EipEvent(inventory=await self.answer(msg.uuid, "updated", msg.require_auth()))

        return await self.ctx.queues.run(eip_queue(msg.uuid), run)

    async def _detach(self, eip: EipVO) -> None:
        """Revoke on the host first: a host that refuses leaves the EIP attached."""
        if eip.state == EIP_ENABLED:
            await self._revoke(eip)
        await self._set_nic(eip.uuid, None, None)

    async def _revoke(self, eip: EipVO) -> None:
        """Take the attached EIP off its NIC's host (while its row still says Enabled)."""
        assert eip.vm_nic_uuid is not None
        try:
            place = await nic_place(self.ctx, eip.vm_nic_uuid)
        except ZError as exc:
            if exc.code != SysErr.RESOURCE_NOT_FOUND:
                raise
            return  # the NIC is gone: nothing holds the EIP any more
        if place.host is None:
            return
        backend = await self._backend(place.nic.l3_network_uuid)
        try:
            await backend.revoke_eip(await self._on_host(eip.uuid, place))
        except ZError as exc:
            # Not Connected: its reconnect sends the whole NAT table, without this one.
            if exc.code != HostErr.WRONG_STATE:
                raise

    # ----- state -------------------------------------------------------------------------

    @handles(APIChangeEipStateMsg)
    async def change_state_api(self, msg: APIChangeEipStateMsg) -> EipEvent:
        async def run() -> EipEvent:
            await self._change_state(msg.uuid, msg.state_event == "enable")
            return EipEvent(inventory=await self.answer(msg.uuid, "updated", msg.require_auth()))

        return await self.ctx.queues.run(eip_queue(msg.uuid), run)

    async def _change_state(self, uuid: str, enable: bool) -> None:
        """A disabled EIP keeps its NIC but leaves the host's NAT table (revoked before the
        row changes: a host that refuses leaves it Enabled); enabling puts it back, and a
        host that refuses leaves it Disabled."""
        async with self.ctx.db.session() as session:
            eip: EipVO = await self.require(session, uuid)
        wanted = EIP_ENABLED if enable else EIP_DISABLED
        if eip.state == wanted:
            return
        if not enable:
            if eip.vm_nic_uuid is not None:
                await self._revoke(eip)
            await self.update_fields(uuid, {"state": wanted})
            return
        await self.update_fields(uuid, {"state": wanted})
        if eip.vm_nic_uuid is None:
            return
        try:
            place = await nic_place(self.ctx, eip.vm_nic_uuid)
            await self._apply(uuid, place, await self._backend(place.nic.l3_network_uuid))
        except BaseException:
            await self.update_fields(uuid, {"state": EIP_DISABLED})
            raise

    async def _set_nic(self, uuid: str, nic_uuid: str | None, guest_ip: str | None) -> None:
        async with self.ctx.db.session() as session, session.begin():
            await session.execute(
                update(EipVO)
                .where(EipVO.uuid == uuid)
                .values(vm_nic_uuid=nic_uuid, guest_ip=guest_ip)
            )

    async def _backend(self, l3_uuid: str) -> EipBackend:
        return await backend_for(self.ctx, l3_uuid, EIP, EipBackend, "EIP")

    async def _on_host(self, uuid: str, place: NicPlace) -> EipOnHost:
        assert place.host is not None
        views = await self._views(eip_uuids=[uuid])
        if not views:
            raise ZError(SysErr.RESOURCE_NOT_FOUND, f"no attached EIP with uuid {uuid}", uuid=uuid)
        view = views[0]
        return EipOnHost(eip=view, vm_uuid=place.vm_uuid, host=place.host, nic=place.nic)

    @handles(APIGetEipAttachableVmNicsMsg)
    async def candidates(self, msg: APIGetEipAttachableVmNicsMsg) -> APIGetEipAttachableVmNicsReply:
        async with self.ctx.db.session() as session:
            eip: EipVO = await self.require(session, msg.eip_uuid)
            vip = await session.get(VipVO, eip.vip_uuid)
            with_eip = list(
                (
                    await session.execute(
                        select(EipVO.vm_nic_uuid).where(EipVO.vm_nic_uuid.is_not(None))
                    )
                ).scalars()
            )
            refs = await session.execute(
                select(NetworkServiceL3NetworkRefVO.l3_network_uuid).where(
                    NetworkServiceL3NetworkRefVO.network_service_type == EIP
                )
            )
            l3s = {u for u in refs.scalars() if vip is None or u != vip.l3_network_uuid}
        if eip.vm_nic_uuid is not None:
            return APIGetEipAttachableVmNicsReply()  # attached: detach it first
        nics = await candidate_nics(
            self.ctx, msg.require_auth(), l3s, [n for n in with_eip if n], msg.vm_uuid
        )
        return APIGetEipAttachableVmNicsReply(inventories=nics)

    # ----- for providers ---------------------------------------------------------------

    @handles(GetNicEipsMsg)
    async def nic_eips(self, msg: GetNicEipsMsg) -> GetNicEipsReply:
        if msg.l3_network_uuid is not None:
            async with self.ctx.db.session() as session:
                on_l3 = await session.execute(
                    select(VmNicVO.uuid).where(VmNicVO.l3_network_uuid == msg.l3_network_uuid)
                )
                nics = list(on_l3.scalars())
            return GetNicEipsReply(eips=await self._views(nic_uuids=nics))
        return GetNicEipsReply(eips=await self._views(nic_uuids=msg.vm_nic_uuids))

    async def _views(
        self, *, eip_uuids: list[str] | None = None, nic_uuids: list[str] | None = None
    ) -> list[EipView]:
        query = select(EipVO, VipVO).join(VipVO, VipVO.uuid == EipVO.vip_uuid)
        if eip_uuids is not None:
            query = query.where(EipVO.uuid.in_(eip_uuids))
        if nic_uuids is not None:
            if not nic_uuids:
                return []
            query = query.where(EipVO.vm_nic_uuid.in_(nic_uuids))
        async with self.ctx.db.session() as session:
            # What providers put on hosts and routers: attached and enabled EIPs.
            attached = query.where(EipVO.vm_nic_uuid.is_not(None), EipVO.state == EIP_ENABLED)
            rows = (await session.execute(attached)).all()
        return [
            EipView(
                eip_uuid=eip.uuid,
                vip_uuid=vip.uuid,
                vip_ip=vip.ip,
                vip_l3_network_uuid=vip.l3_network_uuid,
                vip_netmask=vip.netmask,
                vip_gateway=vip.gateway,
                vm_nic_uuid=eip.vm_nic_uuid,
                guest_ip=eip.guest_ip,
            )
            for eip, vip in rows
        ]

    # ----- CascadeParticipant: an EIP goes with its VIP -----------------------------------

    async def cascade_children(
        self, parent_type: str, parent_uuids: tuple[str, ...]
    ) -> CascadeChildren | None:
        if parent_type != VIP_TYPE:
            return None
        async with self.ctx.db.session() as session:
            rows = await session.execute(select(EipVO.uuid).where(EipVO.vip_uuid.in_(parent_uuids)))
            return CascadeChildren(EIP_TYPE, tuple(rows.scalars()))

    async def cascade_check(self, children: CascadeChildren) -> None:
        return None

    async def cascade_delete(self, children: CascadeChildren, mode: DeleteMode) -> None:
        replies = await self.ctx.bus.call_many(
            [DeleteEipMsg(uuid=u) for u in children.uuids], parallelism=8
        )
        for reply in replies:
            reply.raise_if_error()
