"""Port-forwarding handlers, each in the rule's queue (``pf:<uuid>``) on its owner node.

A rule holds its ports of its VIP (acquired for "PortForwarding": rules share a VIP, never
a port). Attached to a NIC whose VM is on a host, it is applied by the provider serving
``PortForwarding`` on the NIC's L3 network (``PortForwardingBackend``); the provider follows
the VM itself. A host that refuses an attach or detach leaves the rule as it was; a host
that is not Connected refuses nothing (its reconnect rebuilds its tables).
"""

from __future__ import annotations

import logging
from ipaddress import ip_network
from typing import Any

from sqlalchemy import select, update

from zstackpy.api.messages import AuthContext
from zstackpy.api.ownership import add_resource
from zstackpy.core.bus.message import Reply
from zstackpy.core.cascade import CascadeChildren, DeleteMode
from zstackpy.core.errors import SysErr, ZError
from zstackpy.core.service import handles
from zstackpy.core.workqueue import QueueKey
from zstackpy.services.host.messages import HostErr
from zstackpy.services.networkservice.access import require_usable
from zstackpy.services.networkservice.backends import backend_for
from zstackpy.services.networkservice.extensions import PORT_FORWARDING
from zstackpy.services.networkservice.nics import NicPlace, nic_place
from zstackpy.services.portforwarding.api import (
    APIAttachPortForwardingRuleMsg,
    APICreatePortForwardingRuleMsg,
    APIDeletePortForwardingRuleMsg,
    APIDetachPortForwardingRuleMsg,
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
    DeletePortForwardingRuleMsg,
    GetNicPortForwardingsMsg,
    GetNicPortForwardingsReply,
    PortForwardingErr,
    PortForwardingRuleInventory,
    PortForwardingView,
)
from zstackpy.services.portforwarding.models import PortForwardingRuleVO
from zstackpy.services.resource_service import ResourceService
from zstackpy.services.vip.messages import VIP_TYPE, AcquireVipMsg, AcquireVipReply, ReleaseVipMsg
from zstackpy.services.vip.models import VipVO

log = logging.getLogger(__name__)

USE_FOR = PORT_FORWARDING


def pf_queue(uuid: str) -> QueueKey:
    return QueueKey("pf", uuid)


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


class PortForwardingService(ResourceService):
    name = PORT_FORWARDING_SERVICE
    model = PortForwardingRuleVO
    inventory = PortForwardingRuleInventory
    resource_type = PF_TYPE
    noun = "port-forwarding rule"

    # ----- create, delete ----------------------------------------------------------------

    @handles(APICreatePortForwardingRuleMsg)
    async def create(self, msg: APICreatePortForwardingRuleMsg) -> PortForwardingRuleEvent:
        assert msg.resource_uuid is not None  # the portal gives every create its UUID
        return await self.ctx.queues.run(pf_queue(msg.resource_uuid), self._create, msg)

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
                        state="Enabled",
                        allowed_cidr=cidr,
                    )
                )
                add_resource(session, uuid=uuid, resource_type=PF_TYPE, name=msg.name, auth=auth)
            if msg.vm_nic_uuid is not None:
                await self._attach(uuid, msg.vm_nic_uuid)
        except BaseException:
            await self._forget(uuid, msg.vip_uuid)
            raise
        return PortForwardingRuleEvent(inventory=await self.answer(uuid, "created", auth))

    async def _forget(self, uuid: str, vip_uuid: str) -> None:
        """Undo a create: the row (if made) and the ports taken of the VIP."""
        try:
            async with self.ctx.db.session() as session:
                made = await session.get(PortForwardingRuleVO, uuid) is not None
            if made:
                await self.remove([uuid], None)
            reply = await self.ctx.bus.call(ReleaseVipMsg(vip_uuid=vip_uuid, service_uuid=uuid))
            reply.raise_if_error()
        except ZError as exc:
            log.warning("port-forwarding rule %s: undoing its create failed: %s", uuid, exc)

    @handles(APIUpdatePortForwardingRuleMsg)
    async def update(self, msg: APIUpdatePortForwardingRuleMsg) -> PortForwardingRuleEvent:
        async def run() -> PortForwardingRuleEvent:
            changes = msg.model_dump(
                include={"name", "description"}, exclude_none=True, by_alias=False
            )
            await self.update_fields(msg.uuid, changes)
            inventory = await self.answer(msg.uuid, "updated", msg.require_auth())
            return PortForwardingRuleEvent(inventory=inventory)

        return await self.ctx.queues.run(pf_queue(msg.uuid), run)

    @handles(APIDeletePortForwardingRuleMsg)
    async def delete_api(self, msg: APIDeletePortForwardingRuleMsg) -> PortForwardingRuleEvent:
        auth = msg.require_auth()
        await self.ctx.queues.run(pf_queue(msg.uuid), self._delete, msg.uuid, auth, True)
        return PortForwardingRuleEvent()

    @handles(DeletePortForwardingRuleMsg)
    async def delete_internal(self, msg: DeletePortForwardingRuleMsg) -> Reply:
        async def run() -> None:
            async with self.ctx.db.session() as session:
                if await session.get(PortForwardingRuleVO, msg.uuid) is None:
                    return
            await self._delete(msg.uuid, None, False)

        await self.ctx.queues.run(pf_queue(msg.uuid), run)
        return Reply()

    async def _delete(self, uuid: str, auth: AuthContext | None, release_vip: bool) -> None:
        async with self.ctx.db.session() as session:
            rule: PortForwardingRuleVO = await self.require(session, uuid)
        if rule.vm_nic_uuid is not None:
            await self._detach(rule)
        await self.remove([uuid], auth)
        if release_vip:
            reply = await self.ctx.bus.call(
                ReleaseVipMsg(vip_uuid=rule.vip_uuid, service_uuid=uuid)
            )
            if not reply.success:
                log.warning(
                    "rule %s: releasing VIP %s failed: %s", uuid, rule.vip_uuid, reply.error
                )

    # ----- attach, detach ----------------------------------------------------------------

    @handles(APIAttachPortForwardingRuleMsg)
    async def attach(self, msg: APIAttachPortForwardingRuleMsg) -> PortForwardingRuleEvent:
        async def run() -> PortForwardingRuleEvent:
            await require_usable(self.ctx, msg.require_auth(), [msg.vm_nic_uuid], "VM NIC")
            await self._attach(msg.rule_uuid, msg.vm_nic_uuid)
            inventory = await self.answer(msg.rule_uuid, "updated", msg.require_auth())
            return PortForwardingRuleEvent(inventory=inventory)

        return await self.ctx.queues.run(pf_queue(msg.rule_uuid), run)

    async def _attach(self, uuid: str, nic_uuid: str) -> None:
        async with self.ctx.db.session() as session:
            rule: PortForwardingRuleVO = await self.require(session, uuid)
            vip = await session.get(VipVO, rule.vip_uuid)
        if rule.vm_nic_uuid is not None:
            raise ZError(
                PortForwardingErr.ALREADY_ATTACHED,
                f"rule {uuid} is attached to NIC {rule.vm_nic_uuid}: detach it first",
                uuid=uuid,
                vmNicUuid=rule.vm_nic_uuid,
            )
        place = await nic_place(self.ctx, nic_uuid)
        if vip is not None and vip.l3_network_uuid == place.nic.l3_network_uuid:
            raise ZError(
                PortForwardingErr.SAME_NETWORK,
                f"NIC {nic_uuid} is on the VIP's own L3 network {vip.l3_network_uuid}",
                vmNicUuid=nic_uuid,
            )
        backend = await self._backend(place.nic.l3_network_uuid)
        await self._set_nic(uuid, nic_uuid, place.nic.ip)
        if place.host is None:
            return
        try:
            await backend.apply_port_forwarding(await self._on_host(uuid, place))
        except ZError as exc:
            if exc.code == HostErr.WRONG_STATE:
                return  # not Connected: its reconnect puts the rule there
            await self._set_nic(uuid, None, None)
            raise
        except BaseException:
            await self._set_nic(uuid, None, None)
            raise

    @handles(APIDetachPortForwardingRuleMsg)
    async def detach(self, msg: APIDetachPortForwardingRuleMsg) -> PortForwardingRuleEvent:
        async def run() -> PortForwardingRuleEvent:
            async with self.ctx.db.session() as session:
                rule: PortForwardingRuleVO = await self.require(session, msg.uuid)
            if rule.vm_nic_uuid is None:
                raise ZError(
                    PortForwardingErr.NOT_ATTACHED,
                    f"rule {msg.uuid} is not attached",
                    uuid=msg.uuid,
                )
            await self._detach(rule)
            inventory = await self.answer(msg.uuid, "updated", msg.require_auth())
            return PortForwardingRuleEvent(inventory=inventory)

        return await self.ctx.queues.run(pf_queue(msg.uuid), run)

    async def _detach(self, rule: PortForwardingRuleVO) -> None:
        """Revoke on the host first: a host that refuses leaves the rule attached."""
        assert rule.vm_nic_uuid is not None
        try:
            place: NicPlace | None = await nic_place(self.ctx, rule.vm_nic_uuid)
        except ZError as exc:
            if exc.code != SysErr.RESOURCE_NOT_FOUND:
                raise
            place = None  # the NIC is gone: nothing holds the rule any more
        if place is not None and place.host is not None:
            backend = await self._backend(place.nic.l3_network_uuid)
            try:
                await backend.revoke_port_forwarding(await self._on_host(rule.uuid, place))
            except ZError as exc:
                if exc.code != HostErr.WRONG_STATE:
                    raise
        await self._set_nic(rule.uuid, None, None)

    async def _set_nic(self, uuid: str, nic_uuid: str | None, guest_ip: str | None) -> None:
        async with self.ctx.db.session() as session, session.begin():
            await session.execute(
                update(PortForwardingRuleVO)
                .where(PortForwardingRuleVO.uuid == uuid)
                .values(vm_nic_uuid=nic_uuid, guest_ip=guest_ip)
            )

    async def _backend(self, l3_uuid: str) -> PortForwardingBackend:
        return await backend_for(
            self.ctx, l3_uuid, PORT_FORWARDING, PortForwardingBackend, "port-forwarding"
        )

    async def _on_host(self, uuid: str, place: NicPlace) -> PortForwardingOnHost:
        assert place.host is not None
        views = await self._views(rule_uuids=[uuid])
        if not views:
            raise ZError(SysErr.RESOURCE_NOT_FOUND, f"no attached rule with uuid {uuid}", uuid=uuid)
        return PortForwardingOnHost(
            rule=views[0], vm_uuid=place.vm_uuid, host=place.host, nic=place.nic
        )

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
            rows = (
                await session.execute(query.where(PortForwardingRuleVO.vm_nic_uuid.is_not(None)))
            ).all()
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

    # ----- CascadeParticipant: rules go with their VIP ------------------------------------

    async def cascade_children(
        self, parent_type: str, parent_uuids: tuple[str, ...]
    ) -> CascadeChildren | None:
        if parent_type != VIP_TYPE:
            return None
        async with self.ctx.db.session() as session:
            rows = await session.execute(
                select(PortForwardingRuleVO.uuid).where(
                    PortForwardingRuleVO.vip_uuid.in_(parent_uuids)
                )
            )
            return CascadeChildren(PF_TYPE, tuple(rows.scalars()))

    async def cascade_check(self, children: CascadeChildren) -> None:
        return None

    async def cascade_delete(self, children: CascadeChildren, mode: DeleteMode) -> None:
        replies = await self.ctx.bus.call_many(
            [DeletePortForwardingRuleMsg(uuid=u) for u in children.uuids], parallelism=8
        )
        for reply in replies:
            reply.raise_if_error()
