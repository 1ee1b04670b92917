"""VM handlers: every change of a VM runs in that VM's work queue (``vm:<uuid>``) on the
node that owns it, so concurrent requests on one VM are served in order and each sees the
state the previous one left; the work itself lives in the modules it calls (create
flows, lifecycle, migrate, deletion, volumes, update, sync).

The service also follows the hosts (state sync, ``sync.py``) and owns the task that
expunges VMs destroyed longer than ``vm expungePeriod`` ago.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from sqlalchemy import select

from zstackpy.api.messages import AuthContext
from zstackpy.core.bus.message import Reply
from zstackpy.core.context import NodeContext
from zstackpy.core.errors import ZError
from zstackpy.core.membership import RingChange
from zstackpy.core.ring import Ring
from zstackpy.core.service import Service, ServiceFigure, handles
from zstackpy.services.host.extensions import PingAnswer, PingRider
from zstackpy.services.host.messages import (
    HostStatus,
    HostStatusChangedEvent,
    VmStateChangedOnHostEvent,
)
from zstackpy.services.host.models import HostVO
from zstackpy.services.vm import (
    deletion,
    lifecycle,
    migrate,
    placement_hooks,
    strangers,
    sync,
    update,
    volumes,
)
from zstackpy.services.vm.api import (
    APIChangeInstanceOfferingMsg,
    APICreateVmInstanceMsg,
    APIDestroyVmInstanceMsg,
    APIExpungeVmInstanceMsg,
    APIGetVmMigrationCandidateHostsMsg,
    APIGetVmMigrationCandidateHostsReply,
    APIMigrateVmMsg,
    APIPauseVmInstanceMsg,
    APIRebootVmInstanceMsg,
    APIRecoverVmInstanceMsg,
    APIResumeVmInstanceMsg,
    APIStartVmInstanceMsg,
    APIStopVmInstanceMsg,
    APIUpdateVmInstanceMsg,
    VmInstanceEvent,
)
from zstackpy.services.vm.create_flows import CreateVmCtx
from zstackpy.services.vm.extensions import VmNicRequest, VmPlacementEvent
from zstackpy.services.vm.messages import (
    VM_SERVICE,
    AttachVolumeToVmMsg,
    AttachVolumeToVmReply,
    CreateApplianceVmMsg,
    CreateApplianceVmReply,
    DeleteVmMsg,
    DestroyStrangeVmMsg,
    DestroyStrangeVmReply,
    DetachNicFromVmMsg,
    DetachVolumeFromVmMsg,
    GetVmPlacementMsg,
    GetVmPlacementReply,
    ReconcileVmStateMsg,
    StopVmOnDeletedHostMsg,
    VmRowStamp,
    VmState,
)
from zstackpy.services.vm.models import VmInstanceVO, VmNicVO
from zstackpy.services.vm.nics import delete_nic_rows, nics_deleting, release_ip
from zstackpy.services.vm.records import backend_for, load_vm, nic_specs, publish, vm_host
from zstackpy.services.vm.reference_reads import ReferenceReads
from zstackpy.services.vm.states import ON_HOST, vm_queue
from zstackpy.services.vm.stuck import StuckVmCheck

log = logging.getLogger(__name__)

CREATE_CHAIN = "vm-create"
APPLIANCE_CREATE_CHAIN = "appliance-vm-create"
# States in which the VM's devices are defined on its host (a detach must unplug them).
PLUGGED = frozenset({VmState.RUNNING, VmState.PAUSED})
T = TypeVar("T")


class VmService(Service):
    name = VM_SERVICE

    def __init__(self, ctx: NodeContext) -> None:
        super().__init__(ctx)
        self.devices = volumes.DeviceIds()
        self.strangers = strangers.StrangerWatch(ctx)
        self.reference_reads = ReferenceReads(ctx)
        self.expunger = deletion.ExpungeTask(ctx, self._expunge_queued)
        self.stuck_check = StuckVmCheck(ctx, self._settle)
        self._tasks: set[asyncio.Task[None]] = set()
        # Hosts whose ping sync runs: a host's next ping starts no second one meanwhile.
        self._ping_syncs: set[str] = set()

    async def start(self) -> None:
        await self.ctx.bus.subscribe(VmStateChangedOnHostEvent, self._vm_state_changed)
        await self.ctx.bus.subscribe(HostStatusChangedEvent, self._host_status_changed)

    async def node_ready(self) -> None:
        self.expunger.start()
        self.stuck_check.start()
        if self.ctx.ring.nodes <= {self.ctx.node_uuid}:
            # Alone: every VM left in a transitional state died with an earlier run.
            self._spawn(self._settle_all(lambda _uuid: True), "vm-settle-at-start")

    async def take_over(self, change: RingChange) -> None:
        """VMs of a node that left, caught mid-operation, are settled by their new owner."""
        if not change.left:
            return
        before = Ring((change.ring.nodes - change.joined) | change.left)

        def orphaned(vm_uuid: str) -> bool:
            return change.owns(vm_uuid) and before.owner(vm_uuid) in change.left

        self._spawn(self._settle_all(orphaned), "vm-settle-takeover")

    async def _settle_all(self, mine: Callable[[str], bool]) -> None:
        for vm_uuid in await sync.transitional_vms(self.ctx):
            if mine(vm_uuid):
                await self.ctx.queues.run(vm_queue(vm_uuid), self._settle, vm_uuid)

    async def _settle(self, vm_uuid: str) -> None:
        if await sync.settle(self.ctx, vm_uuid):
            await publish(self.ctx, vm_uuid)

    async def stop(self) -> None:
        await self.expunger.stop()
        await self.stuck_check.stop()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    def figures(self) -> list[ServiceFigure]:
        watch = self.strangers
        return [
            ServiceFigure(
                "vm_strangers",
                "Guests this node's hosts run that the database does not know (last syncs)",
                watch.seen,
            ),
            ServiceFigure(
                "vm_strangers_destroyed",
                "Guests the database did not know, destroyed (vm.cleanUpStrangeVms)",
                watch.destroyed,
                counter=True,
            ),
        ]

    def _queued(self, vm_uuid: str, fn: Callable[[], Awaitable[T]]) -> Awaitable[T]:
        return self.ctx.queues.run(vm_queue(vm_uuid), fn)

    async def _answer(self, vm_uuid: str, work: Callable[[], Awaitable[object]]) -> VmInstanceEvent:
        """Run ``work`` in the VM's queue; answer the VM as it is then, announced."""

        async def run() -> VmInstanceEvent:
            await work()
            return VmInstanceEvent(inventory=await publish(self.ctx, vm_uuid))

        return await self._queued(vm_uuid, run)

    # ----- API: create and lifecycle ------------------------------------------------------

    @handles(APICreateVmInstanceMsg)
    async def create(self, msg: APICreateVmInstanceMsg) -> VmInstanceEvent:
        assert msg.resource_uuid is not None  # the portal gives every create its UUID
        uuid = msg.resource_uuid

        async def run() -> VmInstanceEvent:
            await self.ctx.flows.run(
                CREATE_CHAIN, CreateVmCtx(node=self.ctx, msg=msg, reads=self.reference_reads)
            )
            return VmInstanceEvent(inventory=await publish(self.ctx, uuid, "created"))

        return await self._queued(uuid, run)

    @handles(CreateApplianceVmMsg)
    async def create_appliance(self, msg: CreateApplianceVmMsg) -> CreateApplianceVmReply:
        """An appliance VM through the same flows as a user's, as its owner account."""
        create = APICreateVmInstanceMsg(
            name=msg.name,
            image_uuid=msg.image_uuid,
            instance_offering_uuid=msg.instance_offering_uuid,
            l3_network_uuids=msg.l3_network_uuids,
            default_l3_network_uuid=msg.default_l3_network_uuid,
            zone_uuid=msg.zone_uuid,
            resource_uuid=msg.vm_uuid,
            auth=AuthContext(session_uuid="", account_uuid=msg.account_uuid, is_admin=True),
        )

        async def run() -> CreateApplianceVmReply:
            await self.ctx.flows.run(
                APPLIANCE_CREATE_CHAIN,
                CreateVmCtx(
                    node=self.ctx,
                    msg=create,
                    reads=self.reference_reads,
                    vm_type=msg.appliance_vm_type,
                ),
            )
            inventory = await publish(self.ctx, msg.vm_uuid, "created")
            return CreateApplianceVmReply(inventory=inventory)

        return await self._queued(msg.vm_uuid, run)

    @handles(APIStartVmInstanceMsg)
    async def start_vm(self, msg: APIStartVmInstanceMsg) -> VmInstanceEvent:
        return await self._answer(
            msg.uuid, lambda: lifecycle.start(self.ctx, msg.uuid, msg.host_uuid, msg.cluster_uuid)
        )

    @handles(APIStopVmInstanceMsg)
    async def stop_vm(self, msg: APIStopVmInstanceMsg) -> VmInstanceEvent:
        return await self._answer(msg.uuid, lambda: lifecycle.stop(self.ctx, msg.uuid, msg.type))

    @handles(APIRebootVmInstanceMsg)
    async def reboot_vm(self, msg: APIRebootVmInstanceMsg) -> VmInstanceEvent:
        return await self._answer(msg.uuid, lambda: lifecycle.reboot(self.ctx, msg.uuid))

    @handles(APIPauseVmInstanceMsg)
    async def pause_vm(self, msg: APIPauseVmInstanceMsg) -> VmInstanceEvent:
        return await self._answer(msg.uuid, lambda: lifecycle.pause(self.ctx, msg.uuid))

    @handles(APIResumeVmInstanceMsg)
    async def resume_vm(self, msg: APIResumeVmInstanceMsg) -> VmInstanceEvent:
        return await self._answer(msg.uuid, lambda: lifecycle.resume(self.ctx, msg.uuid))

    @handles(APIMigrateVmMsg)
    async def migrate_vm(self, msg: APIMigrateVmMsg) -> VmInstanceEvent:
        uuid = msg.vm_instance_uuid
        return await self._answer(uuid, lambda: migrate.migrate(self.ctx, uuid, msg.host_uuid))

    @handles(APIGetVmMigrationCandidateHostsMsg)
    async def migration_candidates(
        self, msg: APIGetVmMigrationCandidateHostsMsg
    ) -> APIGetVmMigrationCandidateHostsReply:
        hosts = await migrate.candidate_hosts(self.ctx, msg.vm_instance_uuid)
        return APIGetVmMigrationCandidateHostsReply(inventories=hosts)

    @handles(APIUpdateVmInstanceMsg)
    async def update_vm(self, msg: APIUpdateVmInstanceMsg) -> VmInstanceEvent:
        return await self._answer(msg.uuid, lambda: update.update(self.ctx, msg))

    @handles(APIChangeInstanceOfferingMsg)
    async def change_offering(self, msg: APIChangeInstanceOfferingMsg) -> VmInstanceEvent:
        uuid = msg.vm_instance_uuid
        return await self._answer(uuid, lambda: update.change_offering(self.ctx, msg))

    # ----- API: destroy, recover, expunge -------------------------------------------------

    @handles(APIDestroyVmInstanceMsg)
    async def destroy_vm(self, msg: APIDestroyVmInstanceMsg) -> VmInstanceEvent:
        await self._queued(msg.uuid, lambda: self._destroy(msg.uuid, None))
        return VmInstanceEvent()

    async def _destroy(self, vm_uuid: str, policy: str | None) -> None:
        expunged = await deletion.destroy(self.ctx, vm_uuid, policy)
        if expunged:
            self.devices.forget(vm_uuid)
        await publish(self.ctx, vm_uuid, "deleted" if expunged else "updated")

    @handles(APIRecoverVmInstanceMsg)
    async def recover_vm(self, msg: APIRecoverVmInstanceMsg) -> VmInstanceEvent:
        return await self._answer(msg.uuid, lambda: deletion.recover(self.ctx, msg.uuid))

    @handles(APIExpungeVmInstanceMsg)
    async def expunge_vm(self, msg: APIExpungeVmInstanceMsg) -> VmInstanceEvent:
        await self._queued(msg.uuid, lambda: self._expunge(msg.uuid))
        return VmInstanceEvent()

    async def _expunge(self, vm_uuid: str) -> None:
        await deletion.expunge(self.ctx, vm_uuid)
        self.devices.forget(vm_uuid)
        await publish(self.ctx, vm_uuid, "deleted")

    async def _expunge_queued(self, vm_uuid: str) -> None:
        """The expunge task's: only a VM still Destroyed once its turn comes."""

        async def run() -> None:
            vm = await self._find(vm_uuid)
            if vm is not None and vm.state == VmState.DESTROYED:
                await self._expunge(vm_uuid)

        await self._queued(vm_uuid, run)

    async def _find(self, vm_uuid: str) -> VmInstanceVO | None:
        try:
            return await load_vm(self.ctx, vm_uuid)
        except ZError:
            return None

    # ----- internal: volumes, placement -----------------------------------------------------

    @handles(AttachVolumeToVmMsg)
    async def attach_volume(self, msg: AttachVolumeToVmMsg) -> AttachVolumeToVmReply:
        return await self._queued(
            msg.vm_instance_uuid, lambda: volumes.attach(self.ctx, self.devices, msg)
        )

    @handles(DetachVolumeFromVmMsg)
    async def detach_volume(self, msg: DetachVolumeFromVmMsg) -> Reply:
        await self._queued(msg.vm_instance_uuid, lambda: volumes.detach(self.ctx, msg))
        return Reply()

    @handles(GetVmPlacementMsg)
    async def placement(self, msg: GetVmPlacementMsg) -> GetVmPlacementReply:
        return await volumes.placement(self.ctx, msg)

    # ----- internal: cascades and the expunge task ----------------------------------------

    @handles(DeleteVmMsg)
    async def delete_vm(self, msg: DeleteVmMsg) -> Reply:
        uuid = msg.vm_instance_uuid

        async def run() -> None:
            vm = await self._find(uuid)
            if vm is None:
                return
            if vm.state == VmState.DESTROYED:
                await self._expunge(uuid)
            else:
                await self._destroy(uuid, "Direct")

        await self._queued(uuid, run)
        return Reply()

    @handles(StopVmOnDeletedHostMsg)
    async def stop_on_deleted_host(self, msg: StopVmOnDeletedHostMsg) -> Reply:
        uuid = msg.vm_instance_uuid

        async def run() -> None:
            vm = await self._find(uuid)
            if vm is None or vm.host_uuid != msg.host_uuid or VmState(vm.state) not in ON_HOST:
                return
            # No capacity goes back: the host's delete holds its queue, and the host goes.
            try:
                await lifecycle.stop(self.ctx, uuid, "cold", give_back=False)
            except ZError as exc:
                # The host is going whatever it says: the VM stops being on it.
                log.info("VM %s: stop on deleted host failed (%s)", uuid, exc.description)
                await lifecycle.stopped(self.ctx, vm, msg.host_uuid, give_back=False)
            await publish(self.ctx, uuid)

        await self._queued(uuid, run)
        return Reply()

    @handles(DetachNicFromVmMsg)
    async def detach_nic(self, msg: DetachNicFromVmMsg) -> Reply:
        uuid = msg.vm_instance_uuid

        async def run() -> None:
            async with self.ctx.db.session() as session:
                nic = await session.scalar(
                    select(VmNicVO).where(
                        VmNicVO.uuid == msg.vm_nic_uuid, VmNicVO.vm_instance_uuid == uuid
                    )
                )
            if nic is None:
                return
            await nics_deleting(self.ctx, uuid, [nic.uuid])
            departure = await self._nic_departure(uuid, nic)
            await self._unplug(uuid, nic)
            if departure is not None:
                # Before the row goes: network services read what the NIC had.
                await placement_hooks.left(self.ctx, departure)
            await delete_nic_rows(self.ctx, [nic.uuid])
            if msg.release_ip and nic.used_ip_uuid is not None:
                await release_ip(self.ctx, nic.l3_network_uuid, nic.used_ip_uuid)
            await publish(self.ctx, uuid)

        await self._queued(uuid, run)
        return Reply()

    async def _nic_departure(self, vm_uuid: str, nic: VmNicVO) -> VmPlacementEvent | None:
        """The NIC leaving its VM's host, when the VM is on one."""
        vm = await self._find(vm_uuid)
        if vm is None or vm.host_uuid is None or VmState(vm.state) not in ON_HOST:
            return None
        host = await vm_host(self.ctx, vm.host_uuid)
        specs = await nic_specs(self.ctx, [nic], vm.default_l3_network_uuid)
        return placement_hooks.event(vm_uuid, host, specs, "nic-detached")

    async def _unplug(self, vm_uuid: str, nic: VmNicVO) -> None:
        """Take the NIC off the guest when the VM runs (or is paused) on a host; a VM in
        another state has no device to take off (its next start defines none)."""
        vm = await self._find(vm_uuid)
        if vm is None or vm.host_uuid is None or VmState(vm.state) not in PLUGGED:
            return
        host = await vm_host(self.ctx, vm.host_uuid)
        (spec,) = await nic_specs(self.ctx, [nic], vm.default_l3_network_uuid)
        backend = backend_for(self.ctx, host.hypervisor_type)
        await backend.detach_nic(VmNicRequest(vm_uuid=vm_uuid, host=host, nic=spec))

    # ----- state sync ------------------------------------------------------------------

    @handles(ReconcileVmStateMsg)
    async def reconcile(self, msg: ReconcileVmStateMsg) -> Reply:
        uuid = msg.vm_instance_uuid

        async def run() -> None:
            if await sync.reconcile(self.ctx, uuid, msg.host_uuid, msg.state, msg.expected):
                await publish(self.ctx, uuid)

        await self._queued(uuid, run)
        return Reply()

    async def _vm_state_changed(self, event: VmStateChangedOnHostEvent) -> None:
        # Every node hears it; the VM's owner acts, in the background (events must not
        # hold up their publisher).
        if self._owns(event.vm_uuid):
            self._spawn(
                self.reconcile(
                    ReconcileVmStateMsg(
                        vm_instance_uuid=event.vm_uuid,
                        host_uuid=event.host_uuid,
                        state=event.state,
                    )
                ),
                f"vm-state-report:{event.vm_uuid}",
            )

    async def _host_status_changed(self, event: HostStatusChangedEvent) -> None:
        if not self._owns(event.host_uuid):
            return
        if event.new_status == HostStatus.DISCONNECTED:
            self._spawn(sync.host_disconnected(self.ctx, event.host_uuid), "vm-host-down")
        elif event.new_status == HostStatus.CONNECTED:
            self._spawn(self._sync_host(event.host_uuid), "vm-host-sync")

    async def _sync_host(self, host_uuid: str) -> None:
        result = await sync.sync_host(self.ctx, host_uuid)
        self._strangers_found(host_uuid, result.unknown_vms)

    def _strangers_found(self, host_uuid: str, unknown_vms: list[str]) -> None:
        """What every sync does with the guests the database does not know (or has
        Destroyed): timed, logged, destroyed past their grace (``strangers.py``)."""
        self.strangers.keep_only(self._owns)
        for vm_uuid in self.strangers.report(host_uuid, unknown_vms):
            self.strangers.destroying(vm_uuid)
            self._spawn(self._destroy_stranger(host_uuid, vm_uuid), f"vm-stranger:{vm_uuid}")

    async def _destroy_stranger(self, host_uuid: str, vm_uuid: str) -> None:
        destroyed = False
        try:
            reply = await self.ctx.bus.call(
                DestroyStrangeVmMsg(vm_instance_uuid=vm_uuid, host_uuid=host_uuid)
            )
            reply.raise_if_error()
            destroyed = isinstance(reply, DestroyStrangeVmReply) and reply.destroyed
        finally:
            self.strangers.done(host_uuid, vm_uuid, destroyed)

    @handles(DestroyStrangeVmMsg)
    async def destroy_stranger(self, msg: DestroyStrangeVmMsg) -> DestroyStrangeVmReply:
        """Behind any operation on that uuid (its queue): a creation still writing or
        rolling back its rows finishes first, and a VM it leaves known is not touched."""
        uuid = msg.vm_instance_uuid
        destroyed = await self._queued(
            uuid, lambda: strangers.destroy_stranger(self.ctx, uuid, msg.host_uuid)
        )
        return DestroyStrangeVmReply(destroyed=destroyed)

    async def before_ping(self, host: HostVO) -> PingRider | None:
        """HostPingExtension: the VM sync of a reconnect, after every ping, for the
        hypervisors that ask for it (KVM: ``kvm vmSyncOnHostPing``). The host's VM states
        ride on the ping's answer; the rows they are judged against are read before the
        ping is sent, as a sync must (``sync.sync_host``)."""
        backend = backend_for(self.ctx, host.hypervisor_type)
        if not backend.syncs_on_ping() or host.uuid in self._ping_syncs:
            return None
        placed = await sync.vms_placed_on(self.ctx, host.uuid)

        async def answered(answer: PingAnswer) -> None:
            if host.uuid in self._ping_syncs:
                return
            states = backend.states_in_ping(answer)
            # In the background: corrections wait for their VMs' queues, and an agent
            # without the addition is asked again, up to the agent timeout (a host that
            # died after answering the ping never answers it), which held up the pings
            # of every host, so no host's death was noticed meanwhile.
            self._ping_syncs.add(host.uuid)

            async def run() -> None:
                try:
                    if states is None:  # the agent does not add them: ask for them
                        await self._sync_host(host.uuid)
                    else:
                        await self._reconcile_host(host.uuid, placed, states.states)
                finally:
                    self._ping_syncs.discard(host.uuid)

            self._spawn(run(), "vm-ping-sync")

        return PingRider(fields=backend.ping_fields(), answered=answered)

    async def _reconcile_host(
        self, host_uuid: str, placed: dict[str, VmRowStamp], listed: dict[str, str]
    ) -> None:
        result = await sync.reconcile_host(self.ctx, host_uuid, placed, listed)
        self._strangers_found(host_uuid, result.unknown_vms)

    def _owns(self, uuid: str) -> bool:
        return self.ctx.ring.is_owner(self.ctx.node_uuid, uuid)

    def _spawn(self, work: Awaitable[object], name: str) -> None:
        async def run() -> None:
            try:
                await work
            except ZError as exc:
                log.warning("%s failed: %s", name, exc.description)
            except Exception:
                log.exception("%s failed", name)

        task = asyncio.create_task(run(), name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        if inspect.iscoroutine(work):
            # A task cancelled before it ran (the node stopping) never awaited ``work``:
            # closed here, it does not warn at collection.
            task.add_done_callback(lambda _task: work.close())
