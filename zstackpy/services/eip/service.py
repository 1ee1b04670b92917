"""EIP handlers, each in the EIP's queue (``eip:<uuid>``) on its owner node.

An EIP holds its VIP (acquired for "Eip") and goes to one NIC, NATed by the provider
serving ``Eip`` on the NIC's L3 network (``EipBackend``) on the host running the VM (or on
the network's router). Attach, detach, state and delete are ``VipUserService``'s; one EIP
per NIC.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from zstackpy.api.ownership import add_resource, may_use
from zstackpy.core.bus.message import Reply
from zstackpy.core.errors import SysErr, ZError
from zstackpy.core.service import handles
from zstackpy.services.eip.api import (
    APIAttachEipMsg,
    APIChangeEipStateMsg,
    APICreateEipMsg,
    APIDeleteEipMsg,
    APIDetachEipMsg,
    APIGetEipAttachableVmNicsMsg,
    APIGetEipAttachableVmNicsReply,
    APIGetVmNicAttachableEipsMsg,
    APIGetVmNicAttachableEipsReply,
    APIUpdateEipMsg,
    EipEvent,
)
from zstackpy.services.eip.extensions import EipBackend, EipOnHost
from zstackpy.services.eip.messages import (
    EIP_SERVICE,
    EIP_TYPE,
    ApplyVipStateToEipMsg,
    DeleteEipMsg,
    EipErr,
    EipInventory,
    EipView,
    GetNicEipsMsg,
    GetNicEipsReply,
)
from zstackpy.services.eip.models import EipVO
from zstackpy.services.networkservice.access import require_usable
from zstackpy.services.networkservice.backends import backend_for
from zstackpy.services.networkservice.candidates import (
    candidate_nic,
    candidate_nics,
    networks_with,
)
from zstackpy.services.networkservice.extensions import EIP
from zstackpy.services.networkservice.nics import NicPlace
from zstackpy.services.networkservice.vip_users import ENABLED, NicErrs, VipUserService
from zstackpy.services.vip.messages import AcquireVipMsg, AcquireVipReply, VipErr
from zstackpy.services.vip.models import VipVO
from zstackpy.services.vm.models import VmNicVO

USE_FOR = "Eip"


def _vip_taken(vip_uuid: str, holder: str | None) -> ZError:
    return ZError(
        VipErr.IN_USE,
        f"VIP {vip_uuid} is used by EIP {holder or 'another EIP'}",
        uuid=vip_uuid,
        eipUuid=holder,
    )


class EipService(VipUserService[EipBackend]):
    name = EIP_SERVICE
    model = EipVO
    inventory = EipInventory
    resource_type = EIP_TYPE
    noun = "EIP"
    queue_kind = "eip"
    errs = NicErrs(
        already_attached=EipErr.ALREADY_ATTACHED,
        same_network=EipErr.SAME_NETWORK,
        not_attached=EipErr.NOT_ATTACHED,
    )

    # ----- create, delete ----------------------------------------------------------------

    @handles(APICreateEipMsg)
    async def create(self, msg: APICreateEipMsg) -> EipEvent:
        assert msg.resource_uuid is not None  # the portal gives every create its UUID
        return await self.create_queued(msg.resource_uuid, msg.vip_uuid, lambda: self._create(msg))

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
                        state=ENABLED,
                        vip_ip=reply.vip.ip,
                    )
                )
                add_resource(session, uuid=uuid, resource_type=EIP_TYPE, name=msg.name, auth=auth)
        except IntegrityError:
            # Another EIP took the VIP meanwhile: the VIP is theirs (our use of it ends
            # after the queue).
            raise _vip_taken(msg.vip_uuid, None) from None
        if msg.vm_nic_uuid is not None:
            try:
                await self.attach_nic(uuid, msg.vm_nic_uuid)
            except BaseException:
                await self.forget(uuid)
                raise
        return EipEvent(inventory=await self.answer(uuid, "created", auth))

    @handles(APIUpdateEipMsg)
    async def update(self, msg: APIUpdateEipMsg) -> EipEvent:
        return EipEvent(inventory=await self.update_names(msg.uuid, msg, msg.require_auth()))

    @handles(APIDeleteEipMsg)
    async def delete_api(self, msg: APIDeleteEipMsg) -> EipEvent:
        await self.delete_queued(msg.uuid, msg.require_auth())
        return EipEvent()

    @handles(DeleteEipMsg)
    async def delete_internal(self, msg: DeleteEipMsg) -> Reply:
        await self.delete_cascaded(msg.uuid)
        return Reply()

    @handles(ApplyVipStateToEipMsg)
    async def follow_vip(self, msg: ApplyVipStateToEipMsg) -> Reply:
        await self.follow_vip_queued(msg.uuid, msg.vip_enabled)
        return Reply()

    # ----- attach, detach, state ---------------------------------------------------------

    @handles(APIAttachEipMsg)
    async def attach_api(self, msg: APIAttachEipMsg) -> EipEvent:
        auth = msg.require_auth()
        return EipEvent(inventory=await self.attach_queued(msg.eip_uuid, msg.vm_nic_uuid, auth))

    @handles(APIDetachEipMsg)
    async def detach_api(self, msg: APIDetachEipMsg) -> EipEvent:
        return EipEvent(inventory=await self.detach_queued(msg.uuid, msg.require_auth()))

    @handles(APIChangeEipStateMsg)
    async def change_state_api(self, msg: APIChangeEipStateMsg) -> EipEvent:
        enable, auth = msg.state_event == "enable", msg.require_auth()
        return EipEvent(inventory=await self.change_state_queued(msg.uuid, enable, auth))

    # ----- VipUserService hooks ----------------------------------------------------------

    async def check_attach(self, row: EipVO, nic_uuid: str) -> None:
        async with self.ctx.db.session() as session:
            taken = await session.scalar(select(EipVO.uuid).where(EipVO.vm_nic_uuid == nic_uuid))
        if taken is not None:
            raise ZError(
                EipErr.NIC_HAS_EIP,
                f"NIC {nic_uuid} already has EIP {taken}",
                vmNicUuid=nic_uuid,
                eipUuid=taken,
            )

    async def backend(self, l3_uuid: str) -> EipBackend:
        return await backend_for(self.ctx, l3_uuid, EIP, EipBackend, "EIP")

    async def apply_on(self, backend: EipBackend, uuid: str, place: NicPlace) -> None:
        await backend.apply_eip(await self._on_host(uuid, place))

    async def revoke_on(self, backend: EipBackend, uuid: str, place: NicPlace) -> None:
        await backend.revoke_eip(await self._on_host(uuid, place))

    def delete_msg(self, uuid: str) -> DeleteEipMsg:
        return DeleteEipMsg(uuid=uuid)

    def vip_state_msg(self, uuid: str, vip_enabled: bool) -> ApplyVipStateToEipMsg:
        return ApplyVipStateToEipMsg(uuid=uuid, vip_enabled=vip_enabled)

    async def _on_host(self, uuid: str, place: NicPlace) -> EipOnHost:
        assert place.host is not None
        views = await self._views(eip_uuids=[uuid])
        if not views:
            raise ZError(SysErr.RESOURCE_NOT_FOUND, f"no attached EIP with uuid {uuid}", uuid=uuid)
        view = views[0]
        return EipOnHost(eip=view, vm_uuid=place.vm_uuid, host=place.host, nic=place.nic)

    # ----- candidates --------------------------------------------------------------------

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
        if eip.vm_nic_uuid is not None:
            return APIGetEipAttachableVmNicsReply()  # attached: detach it first
        l3s = {
            u for u in await networks_with(self.ctx, EIP) if vip is None or u != vip.l3_network_uuid
        }
        nics = await candidate_nics(
            self.ctx, msg.require_auth(), l3s, [n for n in with_eip if n], msg.vm_uuid
        )
        return APIGetEipAttachableVmNicsReply(inventories=nics)

    @handles(APIGetVmNicAttachableEipsMsg)
    async def nic_candidates(
        self, msg: APIGetVmNicAttachableEipsMsg
    ) -> APIGetVmNicAttachableEipsReply:
        """Unattached EIPs on VIPs off the NIC's network, the caller's; none when the NIC
        cannot take one (an appliance's, a destroyed VM's, on a network without the Eip
        service, with an EIP already) or IPv6 ones are asked for (VIPs are IPv4)."""
        auth = msg.require_auth()
        nic = await candidate_nic(self.ctx, msg.vm_nic_uuid)
        if (
            nic is None
            or msg.ip_version == 6
            or nic.l3_network_uuid not in await networks_with(self.ctx, EIP)
        ):
            return APIGetVmNicAttachableEipsReply()
        async with self.ctx.db.session() as session:
            if await session.scalar(select(EipVO.uuid).where(EipVO.vm_nic_uuid == nic.uuid)):
                return APIGetVmNicAttachableEipsReply()  # one EIP per NIC
            rows = await session.execute(
                select(EipVO)
                .join(VipVO, VipVO.uuid == EipVO.vip_uuid)
                .where(EipVO.vm_nic_uuid.is_(None), VipVO.l3_network_uuid != nic.l3_network_uuid)
                .order_by(EipVO.create_date, EipVO.uuid)
            )
            found = [
                e for e in rows.scalars() if auth.is_admin or await may_use(session, e.uuid, auth)
            ]
        end = None if msg.limit is None else msg.start + msg.limit
        return APIGetVmNicAttachableEipsReply(
            inventories=[
                EipInventory.model_validate(e, from_attributes=True) for e in found[msg.start : end]
            ]
        )

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
            rows = (await session.execute(query.where(*self.on_data_plane()))).all()
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
