"""Host handlers: every change of a host runs in that host's work queue on its owner node
(``host:<uuid>``, level 1), so state, status and capacity change without locks. Agent
commands for a host run in its agent queue (level ``kvm host.syncLevel``).

Hosts belong to clusters, so this service takes part in a cluster's cascade delete. It
also owns the ping tracker (``tracker.py``) and adopts hosts on ring changes.
"""

from __future__ import annotations

import logging
from collections import Counter
from functools import partial

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from zstackpy.api.ownership import rename_resource
from zstackpy.core.batching import QueueBatcher
from zstackpy.core.bus.message import Reply
from zstackpy.core.cascade import CascadeChildren, DeleteMode
from zstackpy.core.coalesce import BatchedReads
from zstackpy.core.context import NodeContext
from zstackpy.core.errors import ZError
from zstackpy.core.membership import RingChange
from zstackpy.core.service import handles
from zstackpy.services.host.capacity import CapacityAsk, give_back, reserve_many
from zstackpy.services.host.messages import (
    HOST_RESOURCE_TYPE,
    HOST_SERVICE,
    APIChangeHostStateMsg,
    APIDeleteHostMsg,
    APIReconnectHostMsg,
    APIUpdateHostMsg,
    DeleteHostMsg,
    DisconnectHostMsg,
    HostAgentCallMsg,
    HostAgentCallReply,
    HostCapacityReply,
    HostErr,
    HostEvent,
    HostInventory,
    HostState,
    HostStatus,
    ListHostsMsg,
    ListHostsReply,
    ReconnectHostMsg,
    ReconnectHostReply,
    ReserveHostCapacityMsg,
    ReturnHostCapacityMsg,
)
from zstackpy.services.host.models import HostVO
from zstackpy.services.host.records import (
    backend_for,
    duplicate_ip,
    host_not_found,
    host_queue,
    load_host,
    load_hosts,
    publish_changed,
    refuse_duplicate_ip,
    require_host,
    set_status,
    to_inventory,
    to_summary,
)
from zstackpy.services.host.tracker import PingTracker
from zstackpy.services.resource_service import ResourceService

log = logging.getLogger(__name__)

_CLUSTER_TYPE = "ClusterVO"

# stateEvent -> the state it leads to; maintain passes PreMaintenance on the way.
_STATE_EVENTS = {
    "enable": HostState.ENABLED,
    "disable": HostState.DISABLED,
    "maintain": HostState.MAINTENANCE,
}


class HostService(ResourceService):
    name = HOST_SERVICE
    model = HostVO
    inventory = HostInventory
    resource_type = HOST_RESOURCE_TYPE
    noun = "host"

    def __init__(self, ctx: NodeContext) -> None:
        super().__init__(ctx)
        self.tracker = PingTracker(self.ctx, self.reconnect_in_queue)
        # Agent calls read their host's row; a burst of them, to any hosts, shares one
        # read (per-host reads of a burst spread over 32 hosts shared almost nothing).
        self._host_reads: BatchedReads[str, HostVO] = BatchedReads(
            partial(load_hosts, ctx), host_not_found
        )
        self._deleting: Counter[str] = Counter()  # hosts whose delete is queued or running
        self._reservations: QueueBatcher[CapacityAsk, HostCapacityReply] = QueueBatcher(
            ctx.queues, partial(reserve_many, ctx)
        )

    async def start(self) -> None:
        await self.tracker.start()

    async def node_ready(self) -> None:
        # Reconnects run every plugin's connect hooks: only once all services are up.
        self.tracker.begin()

    async def stop(self) -> None:
        await self.tracker.stop()

    # ----- reads and agent calls --------------------------------------------------------

    @handles(ListHostsMsg)
    async def list_hosts(self, msg: ListHostsMsg) -> ListHostsReply:
        stmt = select(HostVO).order_by(HostVO.create_date, HostVO.uuid)
        if msg.cluster_uuids:
            stmt = stmt.where(HostVO.cluster_uuid.in_(msg.cluster_uuids))
        if msg.zone_uuid is not None:
            stmt = stmt.where(HostVO.zone_uuid == msg.zone_uuid)
        if msg.host_uuids:
            stmt = stmt.where(HostVO.uuid.in_(msg.host_uuids))
        if msg.connected_only:
            stmt = stmt.where(HostVO.status == HostStatus.CONNECTED)
        async with self.ctx.db.session() as session:
            rows = (await session.execute(stmt)).scalars().all()
        return ListHostsReply(hosts=[to_summary(r) for r in rows])

    @handles(HostAgentCallMsg)
    async def agent_call(self, msg: HostAgentCallMsg) -> HostAgentCallReply:
        host = await self._host_reads.read(msg.host_uuid)
        if host.status != HostStatus.CONNECTED:
            raise ZError(
                HostErr.WRONG_STATE,
                f"host {host.uuid} is {host.status}, not Connected: cannot run {msg.path}",
                uuid=host.uuid,
                status=host.status,
                path=msg.path,
            )
        backend = backend_for(self.ctx, host.hypervisor_type)
        # The agent client's per-agent queue is the host's command queue: at most
        # command_parallelism() (kvm host.syncLevel) in flight, the rest wait in order.
        result = await self.ctx.agents.call(
            backend.agent_endpoint(host),
            msg.path,
            msg.command,
            timeout=msg.timeout,
            max_in_flight=backend.command_parallelism(),
        )
        return HostAgentCallReply(result=result)

    # ----- API --------------------------------------------------------------------------

    @handles(APIUpdateHostMsg)
    async def update(self, msg: APIUpdateHostMsg) -> HostEvent:
        return await self.ctx.queues.run(host_queue(msg.uuid), self._update, msg)

    async def _update(self, msg: APIUpdateHostMsg) -> HostEvent:
        changes = msg.model_dump(
            include={"name", "description", "management_ip"}, exclude_none=True, by_alias=False
        )
        async with self.ctx.db.session() as session, session.begin():
            await require_host(session, msg.uuid)
            if "management_ip" in changes:
                await refuse_duplicate_ip(session, changes["management_ip"], except_uuid=msg.uuid)
            if changes:
                try:
                    await session.execute(
                        update(HostVO).where(HostVO.uuid == msg.uuid).values(**changes)
                    )
                except IntegrityError:  # another update took the address meanwhile
                    raise duplicate_ip(changes["management_ip"]) from None
            if "name" in changes:
                await rename_resource(session, msg.uuid, changes["name"])
        account = msg.require_auth().account_uuid
        return HostEvent(inventory=await publish_changed(self.ctx, msg.uuid, "updated", account))

    @handles(APIChangeHostStateMsg)
    async def change_host_state(self, msg: APIChangeHostStateMsg) -> HostEvent:
        return await self.ctx.queues.run(host_queue(msg.uuid), self._change_state, msg)

    async def _change_state(self, msg: APIChangeHostStateMsg) -> HostEvent:
        host = await load_host(self.ctx, msg.uuid)
        target = _STATE_EVENTS[msg.state_event]
        if msg.state_event == "disable" and host.state in (
            HostState.PRE_MAINTENANCE,
            HostState.MAINTENANCE,
        ):
            raise ZError(
                HostErr.BAD_STATE_EVENT,
                f"host {host.uuid} is in {host.state}: enable it before disabling it",
                uuid=host.uuid,
                state=host.state,
                stateEvent=msg.state_event,
            )
        account = msg.require_auth().account_uuid
        if target is HostState.MAINTENANCE and host.state != HostState.MAINTENANCE:
            # PreMaintenance while the host's VMs leave (migrated or stopped by the VM
            # service once it exists); with no VMs to move it ends at once.
            await self._set_state(msg.uuid, HostState.PRE_MAINTENANCE, account)
        return HostEvent(inventory=await self._set_state(msg.uuid, target, account))

    async def _set_state(self, uuid: str, state: str, account: str | None) -> HostInventory | None:
        async with self.ctx.db.session() as session, session.begin():
            await session.execute(update(HostVO).where(HostVO.uuid == uuid).values(state=state))
        return await publish_changed(self.ctx, uuid, "updated", account)

    @handles(APIReconnectHostMsg)
    async def reconnect_api(self, msg: APIReconnectHostMsg) -> HostEvent:
        # The operator's reconnect also installs the agent again (real hosts).
        await self.ctx.queues.run(host_queue(msg.uuid), self._reconnect_or_raise, msg.uuid, True)
        # The status change already announced the host; answer without announcing again.
        return HostEvent(inventory=to_inventory(await load_host(self.ctx, msg.uuid)))

    @handles(ReconnectHostMsg)
    async def reconnect(self, msg: ReconnectHostMsg) -> ReconnectHostReply:
        await self.ctx.queues.run(
            host_queue(msg.host_uuid), self._reconnect_or_raise, msg.host_uuid
        )
        return ReconnectHostReply(inventory=to_inventory(await load_host(self.ctx, msg.host_uuid)))

    async def reconnect_in_queue(self, host_uuid: str, reason: str) -> bool:
        """The tracker's reconnect: True when the host is Connected afterwards."""
        try:
            await self.ctx.queues.run(host_queue(host_uuid), self._reconnect_or_raise, host_uuid)
        except ZError as exc:
            log.info("reconnecting host %s (%s) failed: %s", host_uuid, reason, exc.description)
            return False
        return True

    async def _reconnect_or_raise(self, host_uuid: str, redeploy: bool = False) -> None:
        """Runs in the host's queue. A failure leaves the host Disconnected, and raises."""
        host = await load_host(self.ctx, host_uuid)
        backend = backend_for(self.ctx, host.hypervisor_type)
        try:
            await backend.connect(host_uuid, redeploy)
        except ZError as exc:
            await set_status(self.ctx, host_uuid, HostStatus.DISCONNECTED, exc.description)
            raise
        self.tracker.connected(host_uuid)

    @handles(DisconnectHostMsg)
    async def disconnect(self, msg: DisconnectHostMsg) -> Reply:
        await self.ctx.queues.run(
            host_queue(msg.host_uuid), self._disconnect, msg.host_uuid, msg.reason
        )
        return Reply()

    async def _disconnect(self, host_uuid: str, reason: str) -> None:
        host = await load_host(self.ctx, host_uuid)
        if host.status == HostStatus.CONNECTED:
            log.info("host %s is disconnected: %s", host_uuid, reason)
            await set_status(self.ctx, host_uuid, HostStatus.DISCONNECTED, reason)

    @handles(APIDeleteHostMsg)
    async def delete_api(self, msg: APIDeleteHostMsg) -> HostEvent:
        await self._delete_in_queue(msg.uuid, msg.delete_mode)
        return HostEvent()

    @handles(DeleteHostMsg)
    async def delete_internal(self, msg: DeleteHostMsg) -> Reply:
        await self._delete_in_queue(msg.uuid, msg.delete_mode)
        return Reply()

    async def _delete_in_queue(self, uuid: str, mode: str) -> None:
        # The delete holds the host's queue while its cascade waits in its VMs' queues; a
        # VM job there that asked the host's queue for capacity would wait behind the
        # delete for ever. Marked first, the host answers such asks at once instead.
        self._deleting[uuid] += 1
        try:
            await self.ctx.queues.run(host_queue(uuid), self._delete, uuid, mode)
        finally:
            self._deleting[uuid] -= 1
            if not self._deleting[uuid]:
                del self._deleting[uuid]

    async def _delete(self, uuid: str, mode: str) -> None:
        await self.delete_with_children(uuid, mode, None)
        self.tracker.forget(uuid)

    # ----- capacity ---------------------------------------------------------------------

    @handles(ReserveHostCapacityMsg)
    async def reserve_capacity(self, msg: ReserveHostCapacityMsg) -> HostCapacityReply:
        if msg.host_uuid in self._deleting:
            raise ZError(
                HostErr.WRONG_STATE,
                f"host {msg.host_uuid} is being deleted",
                uuid=msg.host_uuid,
            )
        ask = CapacityAsk(msg.host_uuid, msg.cpu_num, msg.memory_size)
        return await self._reservations.submit(host_queue(msg.host_uuid), ask)

    @handles(ReturnHostCapacityMsg)
    async def return_capacity(self, msg: ReturnHostCapacityMsg) -> HostCapacityReply:
        if msg.host_uuid in self._deleting:
            return HostCapacityReply()  # the host and its books go: nothing to return to
        return await self.ctx.queues.run(
            host_queue(msg.host_uuid),
            give_back,
            self.ctx,
            msg.host_uuid,
            msg.cpu_num,
            msg.memory_size,
        )

    # ----- NodeTakeover -----------------------------------------------------------------

    async def take_over(self, change: RingChange) -> None:
        """Hosts that now hash to this node: the tracker pings them from its next round;
        those left Connecting by a dead node are reconnected now."""
        await self.tracker.adopt(change)

    # ----- CascadeParticipant: hosts belong to clusters ---------------------------------

    async def cascade_children(
        self, parent_type: str, parent_uuids: tuple[str, ...]
    ) -> CascadeChildren | None:
        if parent_type != _CLUSTER_TYPE:
            return None
        async with self.ctx.db.session() as session:
            rows = await session.execute(
                select(HostVO.uuid).where(HostVO.cluster_uuid.in_(parent_uuids))
            )
            uuids = tuple(rows.scalars())
        return CascadeChildren(HOST_RESOURCE_TYPE, uuids)

    async def cascade_check(self, children: CascadeChildren) -> None:
        """Hosts hold nothing that could refuse yet (their VMs will)."""

    async def cascade_delete(self, children: CascadeChildren, mode: DeleteMode) -> None:
        replies = await self.ctx.bus.call_many(
            [DeleteHostMsg(uuid=u, delete_mode=mode.value) for u in children.uuids],
            parallelism=8,
        )
        for reply in replies:
            reply.raise_if_error()
