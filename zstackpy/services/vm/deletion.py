"""Destroy, recover and expunge, in the VM's queue (the caller holds it), and the task that
expunges VMs destroyed longer than ``vm expungePeriod`` ago.

- Destroy (``vm deletionPolicy``): the VM leaves its host (``/vm/destroy``, capacity
  back) and becomes Destroyed; its root volume is marked Deleted (its storage kept), its
  data volumes stay attached and its NICs keep their addresses, so that Recover brings it
  back Stopped as it was (root volume Ready again). Direct expunges it at once.
- Expunge: data volumes are detached (free, Ready), the root volume is expunged, the NICs
  and their addresses go, then the row, its tags and anything else the cascade knows.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta

from sqlalchemy import delete, select

from zstackpy.api.ownership import remove_resources
from zstackpy.core.cascade import CascadeParticipant, DeleteMode, cascade_delete
from zstackpy.core.clock import utcnow
from zstackpy.core.context import NodeContext
from zstackpy.core.errors import ZError
from zstackpy.services.vm import placement_hooks
from zstackpy.services.vm.configs import DELETION_POLICY, EXPUNGE_INTERVAL, EXPUNGE_PERIOD
from zstackpy.services.vm.extensions import VmOnHost
from zstackpy.services.vm.lifecycle import begin, fall_back, return_capacity
from zstackpy.services.vm.messages import VM_RESOURCE_TYPE, VmState
from zstackpy.services.vm.models import VmInstanceVO
from zstackpy.services.vm.nics import delete_nic_rows, nics_deleting, release_ip
from zstackpy.services.vm.records import (
    backend_for,
    load_nics,
    load_vm,
    nic_specs,
    set_fields,
    vm_host,
    vm_volumes,
)
from zstackpy.services.vm.states import ON_HOST, VmOp, require_state
from zstackpy.services.volume.messages import (
    DeleteVolumeMsg,
    DetachVmDataVolumesMsg,
    RecoverVolumeMsg,
    VolumeErr,
)

log = logging.getLogger(__name__)

VOLUME_TIMEOUT_S = 3600.0
_NOT_DELETED = VolumeErr.NOT_DELETED.value  # a recover of a volume that was not Deleted


async def destroy(ctx: NodeContext, vm_uuid: str, policy: str | None = None) -> bool:
    """Destroy the VM; answers True when it was expunged too (Direct policy)."""
    vm, old = await begin(ctx, vm_uuid, VmOp.DESTROY)
    host_uuid = vm.host_uuid if old in ON_HOST else None
    departure = None
    try:
        if host_uuid is not None:
            host = await vm_host(ctx, host_uuid)
            nics = await nic_specs(ctx, await load_nics(ctx, vm_uuid), vm.default_l3_network_uuid)
            await backend_for(ctx, host.hypervisor_type).destroy_vm(
                VmOnHost(vm_uuid=vm_uuid, host=host, nics=nics)
            )
            departure = placement_hooks.event(vm_uuid, host, nics, "destroy")
    except BaseException:
        await fall_back(ctx, vm_uuid, old)
        raise
    await set_fields(
        ctx,
        vm_uuid,
        state=VmState.DESTROYED.value,
        host_uuid=None,
        last_host_uuid=host_uuid or vm.last_host_uuid,
    )
    if departure is not None:
        await placement_hooks.left(ctx, departure)
    if host_uuid is not None:
        await return_capacity(ctx, host_uuid, vm)
    if (policy or ctx.configs.value(DELETION_POLICY)) == "Direct":
        await expunge(ctx, vm_uuid)
        return True
    if vm.root_volume_uuid is not None:
        reply = await ctx.bus.call(
            DeleteVolumeMsg(volume_uuid=vm.root_volume_uuid, expunge=False),
            timeout=VOLUME_TIMEOUT_S,
        )
        if not reply.success:
            # The VM is destroyed whatever its volume's status says; Recover copes.
            log.warning("VM %s: marking its root volume Deleted failed: %s", vm_uuid, reply.error)
    return False


async def recover(ctx: NodeContext, vm_uuid: str) -> None:
    """Destroyed -> Stopped: its root volume is Ready again; addresses were kept."""
    vm = await load_vm(ctx, vm_uuid)
    require_state(vm_uuid, vm.state, VmOp.RECOVER)
    if vm.root_volume_uuid is not None:
        reply = await ctx.bus.call(
            RecoverVolumeMsg(volume_uuid=vm.root_volume_uuid), timeout=VOLUME_TIMEOUT_S
        )
        if not reply.success and (reply.error is None or reply.error.code != _NOT_DELETED):
            reply.raise_if_error()
    await set_fields(ctx, vm_uuid, state=VmState.STOPPED.value)


async def expunge(ctx: NodeContext, vm_uuid: str) -> None:
    vm, old = await begin(ctx, vm_uuid, VmOp.EXPUNGE)
    try:
        nics = await load_nics(ctx, vm_uuid)
        # First: what holds its NICs outside the database may refuse, the VM still whole.
        await nics_deleting(ctx, vm_uuid, [n.uuid for n in nics])
        # Then volumes: should one refuse, the VM is still whole (Destroyed) to retry.
        reply = await ctx.bus.call(
            DetachVmDataVolumesMsg(vm_instance_uuid=vm_uuid), timeout=VOLUME_TIMEOUT_S
        )
        reply.raise_if_error()
        # The recorded root volume, and any other the volume service knows: a create that
        # died (an Error VM) had not recorded its own yet.
        roots = {v.uuid for v in await vm_volumes(ctx, vm_uuid) if v.type == "Root"}
        if vm.root_volume_uuid is not None:
            roots.add(vm.root_volume_uuid)
        for root in sorted(roots):
            reply = await ctx.bus.call(
                DeleteVolumeMsg(volume_uuid=root, expunge=True), timeout=VOLUME_TIMEOUT_S
            )
            reply.raise_if_error()
        # Addresses before rows: a release that fails leaves the NIC naming its address.
        for nic in nics:
            if nic.used_ip_uuid is not None:
                await release_ip(ctx, nic.l3_network_uuid, nic.used_ip_uuid)
        await delete_nic_rows(ctx, [n.uuid for n in nics])
        # Tags and whatever else other plugins hang on the VM.
        await cascade_delete(
            ctx.plugins.extensions(CascadeParticipant),
            VM_RESOURCE_TYPE,
            [vm_uuid],
            DeleteMode.ENFORCING,
        )
    except BaseException:
        await fall_back(ctx, vm_uuid, old)
        raise
    async with ctx.db.session() as session, session.begin():
        await session.execute(delete(VmInstanceVO).where(VmInstanceVO.uuid == vm_uuid))
        await remove_resources(session, [vm_uuid])


# Runs one expunge in the VM's queue: the service's, so the task never bypasses it.
QueuedExpunge = Callable[[str], Awaitable[None]]


class ExpungeTask:
    """Every ``vm expungeInterval`` s, expunge the Destroyed VMs this node owns whose
    ``lastOpDate`` is older than ``vm expungePeriod`` s (not under the Never policy)."""

    def __init__(self, ctx: NodeContext, expunge_queued: QueuedExpunge) -> None:
        self._ctx = ctx
        self._expunge = expunge_queued
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._unwatch: list[Callable[[], None]] = []
        self.rounds = 0

    def start(self) -> None:
        for definition in (EXPUNGE_INTERVAL, EXPUNGE_PERIOD, DELETION_POLICY):
            self._unwatch.append(
                self._ctx.configs.watch(
                    definition.category, definition.name, lambda _o, _n: self._wake.set()
                )
            )
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="vm-expunge-task")

    async def stop(self) -> None:
        for unwatch in self._unwatch:
            unwatch()
        self._unwatch.clear()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._ctx.configs.value(EXPUNGE_INTERVAL)):
                    await self._wake.wait()
                continue  # a config changed: sleep again with the new interval
            try:
                await self.run_once()
            except Exception:
                log.exception("the VM expunge round failed")
            self.rounds += 1

    async def run_once(self) -> int:
        """One round; answers how many VMs it expunged."""
        configs = self._ctx.configs
        if configs.value(DELETION_POLICY) == "Never":
            return 0
        period = timedelta(seconds=configs.value(EXPUNGE_PERIOD))
        # Dates are naive UTC in the database (CURRENT_TIMESTAMP on both engines).
        before = utcnow() - period
        async with self._ctx.db.session() as session:
            rows = await session.execute(
                select(VmInstanceVO.uuid).where(
                    VmInstanceVO.state == VmState.DESTROYED.value,
                    VmInstanceVO.last_op_date < before,
                )
            )
            uuids = list(rows.scalars())
        ring, me = self._ctx.ring, self._ctx.node_uuid
        expunged = 0
        for uuid in uuids:
            if not ring.is_owner(me, uuid):
                continue
            try:
                await self._expunge(uuid)
            except ZError as exc:
                log.warning("expunging destroyed VM %s failed: %s", uuid, exc.description)
                continue
            expunged += 1
        return expunged
