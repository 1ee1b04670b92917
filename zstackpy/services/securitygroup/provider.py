"""What hosts hold of security groups, and the ``SecurityGroup`` network-service provider.

A host's rule set is sent whole (``hosts.host_command``) in the host's ``sg-host`` queue on
its owner node; refreshes waiting there together are served by one command (a burst of
member VMs starting on one host costs it about one command, not one per VM). A
member VM's arrival on a host puts its rules there before it runs, its departure takes
them off, and a reconnecting host is sent its set again. Attachments of groups to an L3
network go with the network (cascade).
"""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy import delete, select

from zstackpy.core.bus.message import Reply
from zstackpy.core.cascade import CascadeChildren, DeleteMode
from zstackpy.core.context import NodeContext
from zstackpy.core.errors import ZError
from zstackpy.core.service import Service, handles
from zstackpy.services.host.extensions import ConnectingHost
from zstackpy.services.host.messages import HostAgentCallMsg
from zstackpy.services.networkservice.errors import NetworkServiceErr
from zstackpy.services.networkservice.extensions import (
    SECURITY_GROUP,
    L3ServiceChange,
    ProviderInfo,
    VmServicesEvent,
)
from zstackpy.services.securitygroup import hosts
from zstackpy.services.securitygroup.changes import (
    host_queue,
    push,
)
from zstackpy.services.securitygroup.messages import (
    SECURITY_GROUP_HOST_SERVICE,
    NicOnHost,
    RefreshSecurityGroupHostMsg,
)
from zstackpy.services.securitygroup.models import (
    SecurityGroupL3NetworkRefVO,
)

log = logging.getLogger(__name__)

NIC_DETACHED = "nic-detached"  # VmPlacementEvent.cause of a NIC unplugged from its VM
_L3_TYPE = "L3NetworkVO"
_L3_REF_TYPE = "SecurityGroupL3NetworkRefVO"


class _Batch:
    """Refreshes of one host waiting together: one command serves them all."""

    def __init__(self, done: asyncio.Future[None]) -> None:
        self.done = done
        # Nobody may be left to read an error: mark it read so the loop does not log it.
        done.add_done_callback(lambda f: f.cancelled() or f.exception())
        self.arriving: dict[str, NicOnHost] = {}
        self.leaving: set[str] = set()

    def add(self, msg: RefreshSecurityGroupHostMsg) -> None:
        # Later requests win: a NIC that arrives after it left (or the reverse) is so.
        for nic in msg.arriving:
            self.arriving[nic.uuid] = nic
            self.leaving.discard(nic.uuid)
        for gone in msg.leaving:
            self.leaving.add(gone)
            self.arriving.pop(gone, None)


class SecurityGroupHostService(Service):
    name = SECURITY_GROUP_HOST_SERVICE

    def __init__(self, ctx: NodeContext) -> None:
        super().__init__(ctx)
        # host uuid -> the refresh waiting in its queue that later refreshes join.
        self._waiting: dict[str, _Batch] = {}

    # ----- a host's rule set ------------------------------------------------------------------

    @handles(RefreshSecurityGroupHostMsg)
    async def refresh_host(self, msg: RefreshSecurityGroupHostMsg) -> Reply:
        host = msg.host_uuid
        batch = self._waiting.get(host)
        if batch is not None:
            # A refresh not yet started reads the database when it starts: it covers us,
            # with our arriving and leaving NICs added to its own.
            batch.add(msg)
            await asyncio.shield(batch.done)
            return Reply()
        batch = _Batch(asyncio.get_running_loop().create_future())
        batch.add(msg)
        self._waiting[host] = batch

        async def run() -> None:
            if self._waiting.get(host) is batch:
                del self._waiting[host]  # started: later changes need a run of their own
            await self._send(host, list(batch.arriving.values()), sorted(batch.leaving))

        try:
            await self.ctx.queues.run(host_queue(host), run)
        except BaseException as exc:
            if self._waiting.get(host) is batch:
                del self._waiting[host]
            if not batch.done.done():
                batch.done.set_exception(exc)
            raise
        batch.done.set_result(None)
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

    async def detached_from_l3(self, change: L3ServiceChange) -> None:
        return None

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
            await push(self.ctx, {event.placement.host.uuid})

    async def host_connected(self, host: ConnectingHost) -> None:
        if host.is_first_connect:
            return  # a new host runs no VM yet
        command = await hosts.host_command(self.ctx, host.uuid)
        if not command["ruleTOs"]:
            # No member NIC runs there: a host of a cluster without security groups (a
            # KVM agent built without them among them) is not sent an empty set. Rules
            # left by a NIC removed while its host was away stay until a member arrives.
            return
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
