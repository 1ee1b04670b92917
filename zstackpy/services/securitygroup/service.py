"""Security-group handlers. Every change of a group runs in its queue (``sg:<uuid>``) on
its owner node: the database changes, then every host whose rule set depends on it gets
its whole set again (one command per host, in the host's ``sg-host`` queue, concurrent
refreshes of a host served by one command). Should a host refuse, the database change is
undone, the hosts are sent their sets again, and the API answers the host's error: the
group is as it was before the request.

The service is also the ``SecurityGroup`` network-service provider: a member VM's
arrival on a host puts its rules there before it runs, its departure takes them off, and
a reconnecting host is sent its set again.
"""

from __future__ import annotations

import asyncio
import logging
import uuid as uuid_mod
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import delete, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from zstackpy.api.messages import AuthContext
from zstackpy.api.ownership import add_resource
from zstackpy.core.bus.message import Reply
from zstackpy.core.cascade import CascadeChildren, DeleteMode
from zstackpy.core.errors import SysErr, ZError
from zstackpy.core.service import handles
from zstackpy.core.workqueue import QueueKey
from zstackpy.services.host.extensions import ConnectingHost
from zstackpy.services.host.messages import HostAgentCallMsg
from zstackpy.services.network.messages import GetL3NetworksMsg
from zstackpy.services.networkservice.errors import NetworkServiceErr
from zstackpy.services.networkservice.extensions import (
    SECURITY_GROUP,
    L3ServiceChange,
    ProviderInfo,
    VmServicesEvent,
)
from zstackpy.services.networkservice.messages import (
    GetL3NetworkServicesMsg,
    GetL3NetworkServicesReply,
)
from zstackpy.services.resource_service import ResourceService
from zstackpy.services.securitygroup import hosts
from zstackpy.services.securitygroup.api import (
    APIAddSecurityGroupRuleMsg,
    APIAddVmNicToSecurityGroupMsg,
    APIAttachSecurityGroupToL3NetworkMsg,
    APICreateSecurityGroupMsg,
    APIDeleteSecurityGroupMsg,
    APIDeleteSecurityGroupRuleMsg,
    APIDeleteVmNicFromSecurityGroupMsg,
    APIDetachSecurityGroupFromL3NetworkMsg,
    SecurityGroupEvent,
)
from zstackpy.services.securitygroup.errors import SecurityGroupErr
from zstackpy.services.securitygroup.messages import (
    SECURITY_GROUP_SERVICE,
    NicOnHost,
    RefreshSecurityGroupHostMsg,
)
from zstackpy.services.securitygroup.models import (
    SecurityGroupL3NetworkRefVO,
    SecurityGroupRuleVO,
    SecurityGroupVO,
    VmNicSecurityGroupRefVO,
)
from zstackpy.services.securitygroup.query import (
    GROUP_LOAD_OPTIONS,
    SecurityGroupInventory,
    group_inventory,
)
from zstackpy.services.securitygroup.rules import expand
from zstackpy.services.vm.models import VmNicVO

log = logging.getLogger(__name__)

SG_TYPE = "SecurityGroupVO"
_L3_TYPE = "L3NetworkVO"
_L3_REF_TYPE = "SecurityGroupL3NetworkRefVO"
NIC_DETACHED = "nic-detached"  # VmPlacementEvent.cause of a NIC unplugged from its VM
# Hosts refreshed at once by one change.
PUSH_PARALLELISM = 8

Edit = Callable[[AsyncSession], Awaitable[None]]


def _sg_queue(uuid: str) -> QueueKey:
    return QueueKey("securityGroup", uuid)


def _host_queue(uuid: str) -> QueueKey:
    return QueueKey("sg-host", uuid)


def _new_uuid() -> str:
    return uuid_mod.uuid4().hex


def _columns(row: Any) -> dict[str, Any]:
    return {c.key: getattr(row, c.key) for c in row.__table__.columns}


class SecurityGroupService(ResourceService):
    name = SECURITY_GROUP_SERVICE
    model = SecurityGroupVO
    inventory = SecurityGroupInventory
    resource_type = SG_TYPE
    noun = "security group"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # host uuid -> the refresh waiting in its queue that later plain refreshes join.
        self._waiting: dict[str, asyncio.Future[None]] = {}

    # ----- create, delete --------------------------------------------------------------

    @handles(APICreateSecurityGroupMsg)
    async def create(self, msg: APICreateSecurityGroupMsg) -> SecurityGroupEvent:
        assert msg.resource_uuid is not None  # the portal gives every create its UUID
        uuid = msg.resource_uuid

        async def run() -> SecurityGroupEvent:
            auth = msg.require_auth()
            async with self.ctx.db.session() as session, session.begin():
                await self.refuse_duplicate(session, uuid)
                session.add(
                    SecurityGroupVO(
                        uuid=uuid,
                        name=msg.name,
                        description=msg.description,
                        state="Enabled",
                        ip_version=msg.ip_version,
                    )
                )
                add_resource(session, uuid=uuid, resource_type=SG_TYPE, name=msg.name, auth=auth)
            return SecurityGroupEvent(inventory=await self._answer(uuid, "created", auth))

        return await self.ctx.queues.run(_sg_queue(uuid), run)

    @handles(APIDeleteSecurityGroupMsg)
    async def delete_group(self, msg: APIDeleteSecurityGroupMsg) -> SecurityGroupEvent:
        async def run() -> SecurityGroupEvent:
            await self._delete_group(msg.uuid, msg.require_auth())
            return SecurityGroupEvent()

        return await self.ctx.queues.run(_sg_queue(msg.uuid), run)

    async def _delete_group(self, uuid: str, auth: AuthContext | None) -> None:
        """Members, L3 attachments, rules (and other groups' rules naming it as peer) go
        first and leave the hosts; the group's row goes once the hosts agreed."""
        async with self.ctx.db.session() as session:
            await self.require(session, uuid)
            saved: list[tuple[type[Any], list[dict[str, Any]]]] = []
            for model, where in (
                (VmNicSecurityGroupRefVO, VmNicSecurityGroupRefVO.security_group_uuid == uuid),
                (
                    SecurityGroupL3NetworkRefVO,
                    SecurityGroupL3NetworkRefVO.security_group_uuid == uuid,
                ),
                (
                    SecurityGroupRuleVO,
                    (SecurityGroupRuleVO.security_group_uuid == uuid)
                    | (SecurityGroupRuleVO.remote_security_group_uuid == uuid),
                ),
            ):
                rows = (await session.execute(select(model).where(where))).scalars()
                saved.append((model, [_columns(r) for r in rows]))

        async def remove(session: AsyncSession) -> None:
            for model, rows in saved:
                if rows:
                    await session.execute(
                        delete(model).where(model.uuid.in_([r["uuid"] for r in rows]))
                    )

        async def restore(session: AsyncSession) -> None:
            # Rules last: a rule naming a peer needs nothing, members need the group row.
            for model, rows in saved:
                if rows:
                    await session.execute(insert(model), rows)

        await self._change([uuid], remove, restore)
        await self.remove([uuid], auth)

    # ----- rules ---------------------------------------------------------------------------

    @handles(APIAddSecurityGroupRuleMsg)
    async def add_rules(self, msg: APIAddSecurityGroupRuleMsg) -> SecurityGroupEvent:
        return await self.ctx.queues.run(_sg_queue(msg.security_group_uuid), self._add_rules, msg)

    async def _add_rules(self, msg: APIAddSecurityGroupRuleMsg) -> SecurityGroupEvent:
        uuid = msg.security_group_uuid
        async with self.ctx.db.session() as session:
            group = (
                await session.execute(
                    select(SecurityGroupVO)
                    .options(*GROUP_LOAD_OPTIONS)
                    .where(SecurityGroupVO.uuid == uuid)
                )
            ).scalar_one_or_none()
            if group is None:
                raise ZError(
                    SysErr.RESOURCE_NOT_FOUND, f"no security group with uuid {uuid}", uuid=uuid
                )
            peers = set(msg.remote_security_group_uuids) | {
                r.remote_security_group_uuid for r in msg.rules if r.remote_security_group_uuid
            }
            if peers:
                found = set(
                    (
                        await session.execute(
                            select(SecurityGroupVO.uuid).where(SecurityGroupVO.uuid.in_(peers))
                        )
                    ).scalars()
                )
                missing = sorted(peers - found)
                if missing:
                    raise ZError(
                        SysErr.RESOURCE_NOT_FOUND,
                        f"no security group with uuid {', '.join(missing)}",
                        uuids=missing,
                    )
            top = await session.scalar(
                select(func.max(SecurityGroupRuleVO.priority)).where(
                    SecurityGroupRuleVO.security_group_uuid == uuid
                )
            )
        existing = {
            (
                r.type,
                r.protocol,
                r.start_port,
                r.end_port,
                r.allowed_cidr,
                r.remote_security_group_uuid,
                r.action,
            )
            for r in group.rules
        }
        specs = expand(msg.rules, msg.remote_security_group_uuids, existing)
        first = msg.priority if msg.priority is not None else (top or 0) + 1
        rows = [
            {
                "uuid": _new_uuid(),
                "security_group_uuid": uuid,
                "type": s.type,
                "ip_version": 4,
                "protocol": s.protocol,
                "state": "Enabled",
                "priority": first + i,
                "description": s.description,
                "action": s.action,
                "allowed_cidr": s.allowed_cidr,
                "remote_security_group_uuid": s.remote_security_group_uuid,
                "start_port": s.start_port,
                "end_port": s.end_port,
            }
            for i, s in enumerate(specs)
        ]
        new = [r["uuid"] for r in rows]

        async def add(session: AsyncSession) -> None:
            await session.execute(insert(SecurityGroupRuleVO), rows)

        async def take_back(session: AsyncSession) -> None:
            await session.execute(
                delete(SecurityGroupRuleVO).where(SecurityGroupRuleVO.uuid.in_(new))
            )

        await self._change([uuid], add, take_back)
        auth = msg.require_auth()
        return SecurityGroupEvent(inventory=await self._answer(uuid, "updated", auth))

    @handles(APIDeleteSecurityGroupRuleMsg)
    async def delete_rules(self, msg: APIDeleteSecurityGroupRuleMsg) -> SecurityGroupEvent:
        async with self.ctx.db.session() as session:
            groups = sorted(
                set(
                    (
                        await session.execute(
                            select(SecurityGroupRuleVO.security_group_uuid).where(
                                SecurityGroupRuleVO.uuid.in_(msg.rule_uuids)
                            )
                        )
                    ).scalars()
                )
            )
        if not groups:
            return SecurityGroupEvent()  # rules already gone: nothing to do
        if len(groups) > 1:
            raise ZError(
                SysErr.INVALID_ARGUMENT,
                "the rules belong to several security groups: delete them group by group",
                securityGroupUuids=groups,
            )
        (group,) = groups

        async def run() -> SecurityGroupEvent:
            async with self.ctx.db.session() as session:
                saved = [
                    _columns(r)
                    for r in (
                        await session.execute(
                            select(SecurityGroupRuleVO).where(
                                SecurityGroupRuleVO.uuid.in_(msg.rule_uuids)
                            )
                        )
                    ).scalars()
                ]

            async def remove(session: AsyncSession) -> None:
                await session.execute(
                    delete(SecurityGroupRuleVO).where(
                        SecurityGroupRuleVO.uuid.in_([r["uuid"] for r in saved])
                    )
                )

            async def restore(session: AsyncSession) -> None:
                if saved:
                    await session.execute(insert(SecurityGroupRuleVO), saved)

            await self._change([group], remove, restore)
            auth = msg.require_auth()
            return SecurityGroupEvent(inventory=await self._answer(group, "updated", auth))

        return await self.ctx.queues.run(_sg_queue(group), run)

    # ----- L3 networks ----------------------------------------------------------------------

    @handles(APIAttachSecurityGroupToL3NetworkMsg)
    async def attach_l3(self, msg: APIAttachSecurityGroupToL3NetworkMsg) -> SecurityGroupEvent:
        return await self.ctx.queues.run(_sg_queue(msg.security_group_uuid), self._attach_l3, msg)

    async def _attach_l3(self, msg: APIAttachSecurityGroupToL3NetworkMsg) -> SecurityGroupEvent:
        uuid, l3_uuid = msg.security_group_uuid, msg.l3_network_uuid
        (await self.ctx.bus.call(GetL3NetworksMsg(l3_network_uuids=[l3_uuid]))).raise_if_error()
        services = await self.ctx.bus.request(
            GetL3NetworkServicesMsg(l3_network_uuids=[l3_uuid]), GetL3NetworkServicesReply
        )
        if services.provider_of(l3_uuid, SECURITY_GROUP) is None:
            raise ZError(
                NetworkServiceErr.NOT_ENABLED,
                f"L3 network {l3_uuid} has no SecurityGroup network service: attach one first",
                l3NetworkUuid=l3_uuid,
                networkServiceType=SECURITY_GROUP,
            )
        async with self.ctx.db.session() as session, session.begin():
            await self.require(session, uuid)
            if await self._l3_ref(session, uuid, l3_uuid) is not None:
                raise ZError(
                    SecurityGroupErr.ALREADY_ATTACHED,
                    f"security group {uuid} is already attached to L3 network {l3_uuid}",
                    uuid=uuid,
                    l3NetworkUuid=l3_uuid,
                )
            session.add(
                SecurityGroupL3NetworkRefVO(
                    uuid=_new_uuid(), security_group_uuid=uuid, l3_network_uuid=l3_uuid
                )
            )
        return SecurityGroupEvent(inventory=await self._answer(uuid, "updated", msg.require_auth()))

    @handles(APIDetachSecurityGroupFromL3NetworkMsg)
    async def detach_l3(self, msg: APIDetachSecurityGroupFromL3NetworkMsg) -> SecurityGroupEvent:
        return await self.ctx.queues.run(_sg_queue(msg.security_group_uuid), self._detach_l3, msg)

    async def _detach_l3(self, msg: APIDetachSecurityGroupFromL3NetworkMsg) -> SecurityGroupEvent:
        uuid, l3_uuid = msg.security_group_uuid, msg.l3_network_uuid
        async with self.ctx.db.session() as session:
            await self.require(session, uuid)
            ref = await self._l3_ref(session, uuid, l3_uuid)
            if ref is None:
                raise ZError(
                    SecurityGroupErr.NOT_ATTACHED,
                    f"security group {uuid} is not attached to L3 network {l3_uuid}",
                    uuid=uuid,
                    l3NetworkUuid=l3_uuid,
                )
            saved_ref = _columns(ref)
            members = [
                _columns(r)
                for r in (
                    await session.execute(
                        select(VmNicSecurityGroupRefVO)
                        .join(VmNicVO, VmNicVO.uuid == VmNicSecurityGroupRefVO.vm_nic_uuid)
                        .where(
                            VmNicSecurityGroupRefVO.security_group_uuid == uuid,
                            VmNicVO.l3_network_uuid == l3_uuid,
                        )
                    )
                ).scalars()
            ]

        async def remove(session: AsyncSession) -> None:
            if members:
                await session.execute(
                    delete(VmNicSecurityGroupRefVO).where(
                        VmNicSecurityGroupRefVO.uuid.in_([m["uuid"] for m in members])
                    )
                )
            await session.execute(
                delete(SecurityGroupL3NetworkRefVO).where(
                    SecurityGroupL3NetworkRefVO.uuid == saved_ref["uuid"]
                )
            )

        async def restore(session: AsyncSession) -> None:
            await session.execute(insert(SecurityGroupL3NetworkRefVO), [saved_ref])
            if members:
                await session.execute(insert(VmNicSecurityGroupRefVO), members)

        await self._change([uuid], remove, restore)
        return SecurityGroupEvent(inventory=await self._answer(uuid, "updated", msg.require_auth()))

    @staticmethod
    async def _l3_ref(
        session: AsyncSession, uuid: str, l3_uuid: str
    ) -> SecurityGroupL3NetworkRefVO | None:
        return await session.scalar(
            select(SecurityGroupL3NetworkRefVO).where(
                SecurityGroupL3NetworkRefVO.security_group_uuid == uuid,
                SecurityGroupL3NetworkRefVO.l3_network_uuid == l3_uuid,
            )
        )

    # ----- members ----------------------------------------------------------------------------

    @handles(APIAddVmNicToSecurityGroupMsg)
    async def add_nics(self, msg: APIAddVmNicToSecurityGroupMsg) -> SecurityGroupEvent:
        return await self.ctx.queues.run(_sg_queue(msg.security_group_uuid), self._add_nics, msg)

    async def _add_nics(self, msg: APIAddVmNicToSecurityGroupMsg) -> SecurityGroupEvent:
        uuid = msg.security_group_uuid
        wanted = list(dict.fromkeys(msg.vm_nic_uuids))
        async with self.ctx.db.session() as session:
            await self.require(session, uuid)
            nics = {
                n.uuid: n
                for n in (
                    await session.execute(select(VmNicVO).where(VmNicVO.uuid.in_(wanted)))
                ).scalars()
            }
            missing = [n for n in wanted if n not in nics]
            if missing:
                raise ZError(
                    SysErr.RESOURCE_NOT_FOUND,
                    f"no VM NIC with uuid {', '.join(missing)}",
                    uuids=missing,
                )
            attached = set(
                (
                    await session.execute(
                        select(SecurityGroupL3NetworkRefVO.l3_network_uuid).where(
                            SecurityGroupL3NetworkRefVO.security_group_uuid == uuid
                        )
                    )
                ).scalars()
            )
            outside = sorted(n.uuid for n in nics.values() if n.l3_network_uuid not in attached)
            if outside:
                raise ZError(
                    SecurityGroupErr.L3_NOT_ATTACHED,
                    f"the L3 networks of NICs {', '.join(outside)} are not attached to "
                    f"security group {uuid}",
                    uuid=uuid,
                    vmNicUuids=outside,
                )
            already = set(
                (
                    await session.execute(
                        select(VmNicSecurityGroupRefVO.vm_nic_uuid).where(
                            VmNicSecurityGroupRefVO.security_group_uuid == uuid,
                            VmNicSecurityGroupRefVO.vm_nic_uuid.in_(wanted),
                        )
                    )
                ).scalars()
            )
        rows = [
            {
                "uuid": _new_uuid(),
                "vm_nic_uuid": n,
                "security_group_uuid": uuid,
                "vm_instance_uuid": nics[n].vm_instance_uuid,
                "priority": 1,
            }
            for n in wanted
            if n not in already
        ]
        if rows:

            async def add(session: AsyncSession) -> None:
                await session.execute(insert(VmNicSecurityGroupRefVO), rows)

            async def take_back(session: AsyncSession) -> None:
                await session.execute(
                    delete(VmNicSecurityGroupRefVO).where(
                        VmNicSecurityGroupRefVO.uuid.in_([r["uuid"] for r in rows])
                    )
                )

            await self._change([uuid], add, take_back)
        return SecurityGroupEvent(inventory=await self._answer(uuid, "updated", msg.require_auth()))

    @handles(APIDeleteVmNicFromSecurityGroupMsg)
    async def delete_nics(self, msg: APIDeleteVmNicFromSecurityGroupMsg) -> SecurityGroupEvent:
        return await self.ctx.queues.run(_sg_queue(msg.security_group_uuid), self._delete_nics, msg)

    async def _delete_nics(self, msg: APIDeleteVmNicFromSecurityGroupMsg) -> SecurityGroupEvent:
        uuid = msg.security_group_uuid
        async with self.ctx.db.session() as session:
            await self.require(session, uuid)
            saved = [
                _columns(r)
                for r in (
                    await session.execute(
                        select(VmNicSecurityGroupRefVO).where(
                            VmNicSecurityGroupRefVO.security_group_uuid == uuid,
                            VmNicSecurityGroupRefVO.vm_nic_uuid.in_(msg.vm_nic_uuids),
                        )
                    )
                ).scalars()
            ]
        if saved:

            async def remove(session: AsyncSession) -> None:
                await session.execute(
                    delete(VmNicSecurityGroupRefVO).where(
                        VmNicSecurityGroupRefVO.uuid.in_([r["uuid"] for r in saved])
                    )
                )

            async def restore(session: AsyncSession) -> None:
                await session.execute(insert(VmNicSecurityGroupRefVO), saved)

            await self._change([uuid], remove, restore)
        return SecurityGroupEvent(inventory=await self._answer(uuid, "updated", msg.require_auth()))

    # ----- the change protocol: database, then hosts, undone together ---------------------

    async def _change(self, groups: list[str], edit: Edit, undo: Edit) -> None:
        before = await hosts.hosts_of_groups(self.ctx, groups)
        async with self.ctx.db.session() as session, session.begin():
            await edit(session)
        touched = before | await hosts.hosts_of_groups(self.ctx, groups)
        try:
            await self.push(touched)
        except BaseException:
            async with self.ctx.db.session() as session, session.begin():
                await undo(session)
            try:
                await self.push(touched)  # the hosts that took the change get it back
            except ZError as exc:
                log.warning("security groups %s: restoring hosts failed: %s", groups, exc)
            raise

    async def push(self, host_uuids: set[str]) -> None:
        """Refresh every host; the first refusal is raised once all have answered."""
        if not host_uuids:
            return
        replies = await self.ctx.bus.call_many(
            [RefreshSecurityGroupHostMsg(host_uuid=h) for h in sorted(host_uuids)],
            parallelism=PUSH_PARALLELISM,
        )
        for reply in replies:
            reply.raise_if_error()

    async def _answer(self, uuid: str, change: Any, auth: AuthContext) -> SecurityGroupInventory:
        async with self.ctx.db.session() as session:
            row = (
                await session.execute(
                    select(SecurityGroupVO)
                    .options(*GROUP_LOAD_OPTIONS)
                    .where(SecurityGroupVO.uuid == uuid)
                )
            ).scalar_one_or_none()
        if row is None:
            raise ZError(
                SysErr.RESOURCE_NOT_FOUND, f"no security group with uuid {uuid}", uuid=uuid
            )
        inventory = group_inventory(row)
        await self._publish(uuid, change, auth, inventory.model_dump(mode="json", by_alias=True))
        return inventory

    # ----- a host's rule set ------------------------------------------------------------------

    @handles(RefreshSecurityGroupHostMsg)
    async def refresh_host(self, msg: RefreshSecurityGroupHostMsg) -> Reply:
        host = msg.host_uuid
        if msg.arriving or msg.leaving:
            await self.ctx.queues.run(
                _host_queue(host), self._send, host, msg.arriving, msg.leaving
            )
            return Reply()
        waiting = self._waiting.get(host)
        if waiting is not None:
            # A refresh not yet started reads the database when it starts: it covers us.
            await asyncio.shield(waiting)
            return Reply()
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        # Nobody may be left to read an error: mark it read so the loop does not log it.
        future.add_done_callback(lambda f: f.cancelled() or f.exception())
        self._waiting[host] = future

        async def run() -> None:
            if self._waiting.get(host) is future:
                del self._waiting[host]  # started: later changes need a run of their own
            await self._send(host, [], [])

        try:
            await self.ctx.queues.run(_host_queue(host), run)
        except BaseException as exc:
            if self._waiting.get(host) is future:
                del self._waiting[host]
            if not future.done():
                future.set_exception(exc)
            raise
        future.set_result(None)
        return Reply()

    async def _send(self, host_uuid: str, arriving: list[NicOnHost], leaving: list[str]) -> None:
        command = await hosts.host_command(self.ctx, host_uuid, arriving, leaving)
        reply = await self.ctx.bus.call(
            HostAgentCallMsg(
                host_uuid=host_uuid,
                path=hosts.REFRESH_PATH,
                command=command,
                timeout=hosts.REFRESH_TIMEOUT_S,
            ),
            timeout=hosts.REFRESH_TIMEOUT_S + 30,
        )
        reply.raise_if_error()

    # ----- NetworkServiceProviderBackend ---------------------------------------------------

    def provider(self) -> ProviderInfo:
        return ProviderInfo(
            name="SecurityGroup",
            type=SECURITY_GROUP,
            description="security-group rules applied on each KVM host by its agent",
            service_types=(SECURITY_GROUP,),
        )

    async def attach_to_l3(self, change: L3ServiceChange) -> None:
        return None

    async def detach_from_l3(self, change: L3ServiceChange) -> None:
        async with self.ctx.db.session() as session:
            groups = list(
                (
                    await session.execute(
                        select(SecurityGroupL3NetworkRefVO.security_group_uuid).where(
                            SecurityGroupL3NetworkRefVO.l3_network_uuid == change.l3_network_uuid
                        )
                    )
                ).scalars()
            )
        if groups:
            raise ZError(
                NetworkServiceErr.IN_USE,
                f"security groups {', '.join(groups)} are attached to L3 network "
                f"{change.l3_network_uuid}: detach them first",
                l3NetworkUuid=change.l3_network_uuid,
                securityGroupUuids=groups,
            )

    async def vm_arriving(self, event: VmServicesEvent) -> None:
        if not await hosts.has_members(self.ctx, (n.uuid for n in event.nics)):
            return
        arriving = [
            NicOnHost(
                uuid=n.uuid,
                vm_instance_uuid=event.placement.vm_uuid,
                internal_name=n.internal_name,
                mac=n.mac,
                ip=n.ip,
            )
            for n in event.nics
        ]
        reply = await self.ctx.bus.call(
            RefreshSecurityGroupHostMsg(host_uuid=event.placement.host.uuid, arriving=arriving),
            timeout=hosts.REFRESH_TIMEOUT_S + 60,
        )
        reply.raise_if_error()

    async def vm_arrived(self, event: VmServicesEvent) -> None:
        # A refresh that ran between the arrival and the database saying so missed it.
        await self._refresh_for(event)

    async def vm_left(self, event: VmServicesEvent) -> None:
        if event.placement.cause != NIC_DETACHED:
            await self._refresh_for(event)
            return
        # The VM stays: only its unplugged NICs, still in the database, leave the host.
        if await hosts.has_members(self.ctx, (n.uuid for n in event.nics)):
            reply = await self.ctx.bus.call(
                RefreshSecurityGroupHostMsg(
                    host_uuid=event.placement.host.uuid, leaving=[n.uuid for n in event.nics]
                ),
                timeout=hosts.REFRESH_TIMEOUT_S + 60,
            )
            reply.raise_if_error()

    async def _refresh_for(self, event: VmServicesEvent) -> None:
        if await hosts.has_members(self.ctx, (n.uuid for n in event.nics)):
            await self.push({event.placement.host.uuid})

    async def host_connected(self, host: ConnectingHost) -> None:
        if host.is_first_connect:
            return  # a new host runs no VM yet
        command = await hosts.host_command(self.ctx, host.uuid)
        await self.ctx.agents.call(
            host.agent, hosts.REFRESH_PATH, command, timeout=hosts.REFRESH_TIMEOUT_S
        )

    # ----- CascadeParticipant: attachments go with their L3 network ------------------------

    async def cascade_children(
        self, parent_type: str, parent_uuids: tuple[str, ...]
    ) -> CascadeChildren | None:
        if parent_type != _L3_TYPE:
            return None
        async with self.ctx.db.session() as session:
            rows = await session.execute(
                select(SecurityGroupL3NetworkRefVO.uuid).where(
                    SecurityGroupL3NetworkRefVO.l3_network_uuid.in_(parent_uuids)
                )
            )
            return CascadeChildren(_L3_REF_TYPE, tuple(rows.scalars()))

    async def cascade_check(self, children: CascadeChildren) -> None:
        return None

    async def cascade_delete(self, children: CascadeChildren, mode: DeleteMode) -> None:
        # The L3's NICs are gone with their VMs by now; its memberships went with them.
        async with self.ctx.db.session() as session, session.begin():
            await session.execute(
                delete(SecurityGroupL3NetworkRefVO).where(
                    SecurityGroupL3NetworkRefVO.uuid.in_(children.uuids)
                )
            )
