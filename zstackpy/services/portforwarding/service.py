"""Port-forwarding handlers, each in the rule's queue (``pf:<uuid>``) on its owner node.

A rule holds its ports of its VIP (acquired for "PortForwarding": rules share a VIP, never
a port) and goes to one NIC, applied by the provider serving ``PortForwarding`` on the
NIC's L3 network (``PortForwardingBackend``) on the host running the VM (or on the
network's router). Attach, detach, state and delete are ``VipUserService``'s.
"""

from __future__ import annotations

from ipaddress import ip_network
from typing import Any

from sqlalchemy import select

from zstackpy.api.ownership import add_resource
from zstackpy.core.bus.message import Reply
from zstackpy.core.errors import SysErr, ZError
from zstackpy.core.service import handles
from zstackpy.services.networkservice.access import require_usable
from zstackpy.services.networkservice.backends import backend_for
from zstackpy.services.networkservice.candidates import candidate_nics, networks_with
from zstackpy.services.networkservice.extensions import PORT_FORWARDING
from zstackpy.services.networkservice.nics import NicPlace
from zstackpy.services.networkservice.vip_users import ENABLED, NicErrs, VipUserService
from zstackpy.services.portforwarding.api import (
    APIAttachPortForwardingRuleMsg,
    APIChangePortForwardingRuleStateMsg,
    APICreatePortForwardingRuleMsg,
    APIDeletePortForwardingRuleMsg,
    APIDetachPortForwardingRuleMsg,
    APIGetPortForwardingAttachableVmNicsMsg,
    APIGetPortForwardingAttachableVmNicsReply,
    APIUpdatePortForwardingRuleMsg,
    PortForwardingRuleEvent,
)
from zstackpy.services.portforwarding.extensions import (
    PortForwardingBackend,
    PortForwardingOnHost,
)
from zstackpy.services.portforwarding.messages import (
    PF_TYPE,
    PORT_FORWARDING_SERVICE,
    ApplyVipStateToPortForwardingRuleMsg,
    DeletePortForwardingRuleMsg,
    GetNicPortForwardingsMsg,
    GetNicPortForwardingsReply,
    PortForwardingErr,
    PortForwardingRuleInventory,
    PortForwardingView,
)
from zstackpy.services.portforwarding.models import PortForwardingRuleVO
from zstackpy.services.vip.messages import AcquireVipMsg, AcquireVipReply
from zstackpy.services.vip.models import VipVO

USE_FOR = PORT_FORWARDING


def _invalid(description: str, **details: Any) -> ZError:
    return ZError(SysErr.INVALID_ARGUMENT, description, **details)


def _ports(msg: APICreatePortForwardingRuleMsg) -> tuple[int, int, int, int]:
    """(vip start, vip end, private start, private end): both ranges as long, as ZStack
    asks; the private range defaults to the VIP's."""
    vip_end = msg.vip_port_end if msg.vip_port_end is not None else msg.vip_port_start
    if vip_end < msg.vip_port_start:
        raise _invalid(
            f"vipPortEnd {vip_end} is below vipPortStart {msg.vip_port_start}", field="vipPortEnd"
        )
    width = vip_end - msg.vip_port_start
    private_start = msg.private_port_start or msg.vip_port_start
    private_end = msg.private_port_end or private_start + width
    if private_end - private_start != width:
        raise _invalid(
            f"the private ports {private_start}-{private_end} and the VIP's "
            f"{msg.vip_port_start}-{vip_end} are not ranges of one length",
            field="privatePortEnd",
        )
    if private_end > 65535:
        raise _invalid(f"private port {private_end} is above 65535", field="privatePortEnd")
    return msg.vip_port_start, vip_end, private_start, private_end


def _cidr(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return str(ip_network(value.strip(), strict=False))
    except ValueError:
        raise _invalid(
            f"allowedCidr {value!r} is not a network", field="allowedCidr", value=value
        ) from None


class PortForwardingService(VipUserService[PortForwardingBackend]):
    name = PORT_FORWARDING_SERVICE
    model = PortForwardingRuleVO
    inventory = PortForwardingRuleInventory
    resource_type = PF_TYPE
    noun = "port-forwarding rule"
    queue_kind = "pf"
    errs = NicErrs(
        already_attached=PortForwardingErr.ALREADY_ATTACHED,
        same_network=PortForwardingErr.SAME_NETWORK,
        not_attached=PortForwardingErr.NOT_ATTACHED,
    )

    # ----- create, delete ----------------------------------------------------------------

    @handles(APICreatePortForwardingRuleMsg)
    async def create(self, msg: APICreatePortForwardingRuleMsg) -> PortForwardingRuleEvent:
        assert msg.resource_uuid is not None  # the portal gives every create its UUID
        return await self.create_queued(msg.resource_uuid, msg.vip_uuid, lambda: self._create(msg))

    async def _create(self, msg: APICreatePortForwardingRuleMsg) -> PortForwardingRuleEvent:
        uuid, auth = msg.resource_uuid, msg.require_auth()
        assert uuid is not None
        vip_start, vip_end, private_start, private_end = _ports(msg)
        cidr = _cidr(msg.allowed_cidr)
        await require_usable(self.ctx, auth, [msg.vip_uuid], "VIP")
        await require_usable(self.ctx, auth, [msg.vm_nic_uuid], "VM NIC")
        async with self.ctx.db.session() as session:
            await self.refuse_duplicate(session, uuid)
        reply = await self.ctx.bus.request(
            AcquireVipMsg(
                vip_uuid=msg.vip_uuid,
                use_for=USE_FOR,
                service_uuid=uuid,
                protocol=msg.protocol_type,
                port_start=vip_start,
                port_end=vip_end,
            ),
            AcquireVipReply,
        )
        assert reply.vip is not None
        try:
            async with self.ctx.db.session() as session, session.begin():
                session.add(
                    PortForwardingRuleVO(
                        uuid=uuid,
                        name=msg.name,
                        description=msg.description,
                        vip_uuid=msg.vip_uuid,
                        vip_ip=reply.vip.ip,
                        vip_port_start=vip_start,
                        vip_port_end=vip_end,
                        private_port_start=private_start,
                        private_port_end=private_end,
                        protocol_type=msg.protocol_type,
                        state=ENABLED,
                        allowed_cidr=cidr,
                    )
                )
                add_resource(session, uuid=uuid, resource_type=PF_TYPE, name=msg.name, auth=auth)
            if msg.vm_nic_uuid is not None:
                await self.attach_nic(uuid, msg.vm_nic_uuid)
        except BaseException:
            await self.forget(uuid)
            raise
        return PortForwardingRuleEvent(inventory=await self.answer(uuid, "created", auth))

    @handles(APIUpdatePortForwardingRuleMsg)
    async def update(self, msg: APIUpdatePortForwardingRuleMsg) -> PortForwardingRuleEvent:
        inventory = await self.update_names(msg.uuid, msg, msg.require_auth())
        return PortForwardingRuleEvent(inventory=inventory)

    @handles(APIDeletePortForwardingRuleMsg)
    async def delete_api(self, msg: APIDeletePortForwardingRuleMsg) -> PortForwardingRuleEvent:
        await self.delete_queued(msg.uuid, msg.require_auth())
        return PortForwardingRuleEvent()

    @handles(DeletePortForwardingRuleMsg)
    async def delete_internal(self, msg: DeletePortForwardingRuleMsg) -> Reply:
        await self.delete_cascaded(msg.uuid)
        return Reply()

    @handles(ApplyVipStateToPortForwardingRuleMsg)
    async def follow_vip(self, msg: ApplyVipStateToPortForwardingRuleMsg) -> Reply:
        await self.follow_vip_queued(msg.uuid, msg.vip_enabled)
        return Reply()

    # ----- attach, detach, state ---------------------------------------------------------

    @handles(APIAttachPortForwardingRuleMsg)
    async def attach_api(self, msg: APIAttachPortForwardingRuleMsg) -> PortForwardingRuleEvent:
        inventory = await self.attach_queued(msg.rule_uuid, msg.vm_nic_uuid, msg.require_auth())
        return PortForwardingRuleEvent(inventory=inventory)

    @handles(APIDetachPortForwardingRuleMsg)
    async def detach_api(self, msg: APIDetachPortForwardingRuleMsg) -> PortForwardingRuleEvent:
        inventory = await self.detach_queued(msg.uuid, msg.require_auth())
        return PortForwardingRuleEvent(inventory=inventory)

    @handles(APIChangePortForwardingRuleStateMsg)
    async def change_state_api(
        self, msg: APIChangePortForwardingRuleStateMsg
    ) -> PortForwardingRuleEvent:
        enable, auth = msg.state_event == "enable", msg.require_auth()
        inventory = await self.change_state_queued(msg.uuid, enable, auth)
        return PortForwardingRuleEvent(inventory=inventory)

    # ----- VipUserService hooks ----------------------------------------------------------

    async def backend(self, l3_uuid: str) -> PortForwardingBackend:
        return await backend_for(
            self.ctx, l3_uuid, PORT_FORWARDING, PortForwardingBackend, "port-forwarding"
        )

    async def apply_on(self, backend: PortForwardingBackend, uuid: str, place: NicPlace) -> None:
        await backend.apply_port_forwarding(await self._on_host(uuid, place))

    async def revoke_on(self, backend: PortForwardingBackend, uuid: str, place: NicPlace) -> None:
        await backend.revoke_port_forwarding(await self._on_host(uuid, place))

    def delete_msg(self, uuid: str) -> DeletePortForwardingRuleMsg:
        return DeletePortForwardingRuleMsg(uuid=uuid)

    def vip_state_msg(self, uuid: str, vip_enabled: bool) -> ApplyVipStateToPortForwardingRuleMsg:
        return ApplyVipStateToPortForwardingRuleMsg(uuid=uuid, vip_enabled=vip_enabled)

    async def _on_host(self, uuid: str, place: NicPlace) -> PortForwardingOnHost:
        assert place.host is not None
        views = await self._views(rule_uuids=[uuid])
        if not views:
            raise ZError(SysErr.RESOURCE_NOT_FOUND, f"no attached rule with uuid {uuid}", uuid=uuid)
        return PortForwardingOnHost(
            rule=views[0], vm_uuid=place.vm_uuid, host=place.host, nic=place.nic
        )

    # ----- candidates --------------------------------------------------------------------

    @handles(APIGetPortForwardingAttachableVmNicsMsg)
    async def candidates(
        self, msg: APIGetPortForwardingAttachableVmNicsMsg
    ) -> APIGetPortForwardingAttachableVmNicsReply:
        """NICs on networks with the PortForwarding service, off the VIP's, whose own rules
        take none of this rule's guest ports (as ZStack); none while it is attached."""
        async with self.ctx.db.session() as session:
            rule: PortForwardingRuleVO = await self.require(session, msg.rule_uuid)
            vip = await session.get(VipVO, rule.vip_uuid)
            clashing = await session.execute(
                select(PortForwardingRuleVO.vm_nic_uuid).where(
                    PortForwardingRuleVO.vm_nic_uuid.is_not(None),
                    PortForwardingRuleVO.protocol_type == rule.protocol_type,
                    PortForwardingRuleVO.private_port_start <= rule.private_port_end,
                    PortForwardingRuleVO.private_port_end >= rule.private_port_start,
                )
            )
            taken = [u for u in clashing.scalars() if u is not None]
        if rule.vm_nic_uuid is not None:
            return APIGetPortForwardingAttachableVmNicsReply()  # attached: detach it first
        l3s = {
            u
            for u in await networks_with(self.ctx, PORT_FORWARDING)
            if vip is None or u != vip.l3_network_uuid
        }
        nics = await candidate_nics(self.ctx, msg.require_auth(), l3s, taken)
        return APIGetPortForwardingAttachableVmNicsReply(inventories=nics)

    # ----- for providers ---------------------------------------------------------------

    @handles(GetNicPortForwardingsMsg)
    async def nic_rules(self, msg: GetNicPortForwardingsMsg) -> GetNicPortForwardingsReply:
        return GetNicPortForwardingsReply(rules=await self._views(nic_uuids=msg.vm_nic_uuids))

    async def _views(
        self, *, rule_uuids: list[str] | None = None, nic_uuids: list[str] | None = None
    ) -> list[PortForwardingView]:
        query = select(PortForwardingRuleVO, VipVO).join(
            VipVO, VipVO.uuid == PortForwardingRuleVO.vip_uuid
        )
        if rule_uuids is not None:
            query = query.where(PortForwardingRuleVO.uuid.in_(rule_uuids))
        if nic_uuids is not None:
            if not nic_uuids:
                return []
            query = query.where(PortForwardingRuleVO.vm_nic_uuid.in_(nic_uuids))
        async with self.ctx.db.session() as session:
            rows = (await session.execute(query.where(*self.on_data_plane()))).all()
        return [
            PortForwardingView(
                rule_uuid=rule.uuid,
                vip_ip=vip.ip,
                vip_l3_network_uuid=vip.l3_network_uuid,
                vip_port_start=rule.vip_port_start,
                vip_port_end=rule.vip_port_end,
                private_port_start=rule.private_port_start,
                private_port_end=rule.private_port_end,
                protocol_type=rule.protocol_type,
                allowed_cidr=rule.allowed_cidr,
                vm_nic_uuid=rule.vm_nic_uuid,
                guest_ip=rule.guest_ip,
            )
            for rule, vip in rows
        ]
