"""VM state sync with hosts (ZStack's VmTracer): what a host reports wins over the
database, and every correction runs in the VM's queue, so it never races an operation.

- An agent reports a VM changed state on its own (VmStateChangedOnHostEvent).
- A host becomes Disconnected: its Running and Paused VMs become Unknown.
- A host becomes Connected again, and (``kvm vmSyncOnHostPing``) after every ping it
  answers: its VM list (``list_vm_states``) is compared with the database: a VM it lacks
  is Stopped, a VM it runs is Running/Paused/Crashed/NoState there, a VM it runs that the
  database does not know is in the sync's answer (``strangers.py`` watches those).

Host events reach every node; only the node owning the host reads its VM list, and each
VM's correction goes to the VM's owner (ReconcileVmStateMsg, routed by the VM's uuid).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from functools import partial

from sqlalchemy import ColumnElement, select
from sqlalchemy.ext.asyncio import AsyncSession

from zstackpy.core.coalesce import BatchedReads, owned_by
from zstackpy.core.context import NodeContext
from zstackpy.core.errors import SysErr, ZError
from zstackpy.services.host.messages import ReserveHostCapacityMsg
from zstackpy.services.host.models import HostVO
from zstackpy.services.vm import placement_hooks
from zstackpy.services.vm.extensions import VmHost, VmOnHost
from zstackpy.services.vm.lifecycle import return_capacity
from zstackpy.services.vm.messages import ReconcileVmStateMsg, VmRowStamp, VmState
from zstackpy.services.vm.models import VmInstanceVO
from zstackpy.services.vm.records import (
    backend_for,
    load_nics,
    load_vm,
    nic_specs,
    set_fields,
    vm_host,
)
from zstackpy.services.vm.states import ON_HOST

log = logging.getLogger(__name__)

UNKNOWN = VmState.UNKNOWN.value
# Stable states a host's report put the VM in; its host going away makes them Unknown.
_SEEN_ON_HOST = frozenset({VmState.RUNNING, VmState.PAUSED, VmState.CRASHED, VmState.NO_STATE})
# What a host reports of a guest it runs (a stopped guest is undefined there).
_RUNS = frozenset({VmState.RUNNING.value, VmState.PAUSED.value})
# States the host can report that the database takes as they are.
_REPORTABLE = {
    VmState.RUNNING.value,
    VmState.STOPPED.value,
    VmState.PAUSED.value,
    VmState.CRASHED.value,
    VmState.NO_STATE.value,
}


@dataclass
class HostSyncResult:
    """What a reconnect sync found: corrections sent, VMs nobody knows."""

    reconciled: dict[str, str] = field(default_factory=dict)
    unknown_vms: list[str] = field(default_factory=list)


async def reconcile(
    ctx: NodeContext,
    vm_uuid: str,
    host_uuid: str,
    reported: str,
    expected: VmRowStamp | None = None,
) -> bool:
    """Make the VM's row agree with what ``host_uuid`` reports; in the VM's queue.
    With ``expected`` (the row the report was judged against), a row that changed since
    is left alone. Answers whether anything changed."""
    try:
        vm = await load_vm(ctx, vm_uuid)
    except ZError:
        return False  # expunged meanwhile
    if expected is not None and expected != VmRowStamp(
        state=vm.state, host_uuid=vm.host_uuid, last_op_date=vm.last_op_date
    ):
        return False
    state = VmState(vm.state)
    if state in (VmState.DESTROYED, VmState.EXPUNGING, VmState.CREATED):
        if reported in (VmState.RUNNING.value, VmState.PAUSED.value):
            log.warning("VM %s is %s but host %s runs it", vm_uuid, state.value, host_uuid)
        return False
    if reported == UNKNOWN:
        # Only a VM the database places on that host becomes Unknown.
        if vm.host_uuid == host_uuid and state in _SEEN_ON_HOST:
            await set_fields(ctx, vm_uuid, state=UNKNOWN)
            return True
        return False
    if reported not in _REPORTABLE:
        reported = UNKNOWN
    if reported == VmState.STOPPED.value:
        if vm.host_uuid != host_uuid or state not in ON_HOST:
            return False  # the VM runs elsewhere, or was already stopped
        await set_fields(
            ctx, vm_uuid, state=VmState.STOPPED.value, host_uuid=None, last_host_uuid=host_uuid
        )
        await return_capacity(ctx, host_uuid, vm)
        await _announce(ctx, vm, left=host_uuid)
        return True
    if vm.host_uuid == host_uuid:
        if vm.state == reported:
            return False
        await set_fields(ctx, vm_uuid, state=reported)
        return True
    # It runs on a host the database does not place it on: it moves there, with its
    # capacity (taken even beyond the host's free capacity would refuse: it does run).
    reply = await ctx.bus.call(
        ReserveHostCapacityMsg(host_uuid=host_uuid, cpu_num=vm.cpu_num, memory_size=vm.memory_size)
    )
    if not reply.success:
        log.warning(
            "VM %s runs on host %s, which has no room left in its books: %s",
            vm_uuid,
            host_uuid,
            reply.error.description if reply.error else "",
        )
    await set_fields(
        ctx,
        vm_uuid,
        state=reported,
        host_uuid=host_uuid,
        last_host_uuid=host_uuid,
        cluster_uuid=await _cluster_of(ctx, host_uuid),
    )
    if vm.host_uuid is not None and state in ON_HOST:
        await return_capacity(ctx, vm.host_uuid, vm)
        await _announce(ctx, vm, left=vm.host_uuid)
    await _announce(ctx, vm, appeared=host_uuid)
    return True


async def _announce(
    ctx: NodeContext, vm: VmInstanceVO, *, left: str | None = None, appeared: str | None = None
) -> None:
    """Tell network services (VmPlacementExtension) what the host's report changed: the VM
    left ``left``, or runs on ``appeared`` without having been started there by us."""
    try:
        nics = await nic_specs(ctx, await load_nics(ctx, vm.uuid), vm.default_l3_network_uuid)
        if left is not None:
            ev = placement_hooks.event(vm.uuid, await vm_host(ctx, left), nics, "sync")
            await placement_hooks.left(ctx, ev)
        if appeared is not None:
            ev = placement_hooks.event(vm.uuid, await vm_host(ctx, appeared), nics, "sync")
            await placement_hooks.appeared(ctx, ev)
    except ZError as exc:  # the state is the host's truth whatever its services say
        log.warning("VM %s: network services did not follow its sync: %s", vm.uuid, exc)


async def _cluster_of(ctx: NodeContext, host_uuid: str) -> str | None:
    async with ctx.db.session() as session:
        return await session.scalar(select(HostVO.cluster_uuid).where(HostVO.uuid == host_uuid))


async def vms_on_host(ctx: NodeContext, host_uuid: str) -> list[str]:
    """VMs the database places on the host."""
    async with ctx.db.session() as session:
        rows = await session.execute(
            select(VmInstanceVO.uuid).where(VmInstanceVO.host_uuid == host_uuid)
        )
        return list(rows.scalars())


async def host_disconnected(ctx: NodeContext, host_uuid: str) -> None:
    """Every VM on the host becomes Unknown (each in its queue, on its owner)."""
    for vm_uuid in await vms_on_host(ctx, host_uuid):
        await _send(
            ctx, ReconcileVmStateMsg(vm_instance_uuid=vm_uuid, host_uuid=host_uuid, state=UNKNOWN)
        )


async def _stamps(ctx: NodeContext, where: ColumnElement[bool]) -> dict[str, VmRowStamp]:
    async with ctx.db.read_session() as session:
        rows = await session.execute(
            select(
                VmInstanceVO.uuid,
                VmInstanceVO.state,
                VmInstanceVO.host_uuid,
                VmInstanceVO.last_op_date,
            ).where(where)
        )
        return {
            row.uuid: VmRowStamp(
                state=row.state, host_uuid=row.host_uuid, last_op_date=row.last_op_date
            )
            for row in rows
        }


# A host as VM commands need it, and the VMs the database places on it.
HostRows = tuple[VmHost, dict[str, VmRowStamp]]


async def _read_hosts(ctx: NodeContext, host_uuids: list[str]) -> dict[str, HostRows]:
    async with ctx.db.read_session() as session:
        hosts = await session.execute(
            select(HostVO.uuid, HostVO.management_ip, HostVO.hypervisor_type).where(
                HostVO.uuid.in_(host_uuids)
            )
        )
        found = {
            row.uuid: VmHost(
                uuid=row.uuid, management_ip=row.management_ip, hypervisor_type=row.hypervisor_type
            )
            for row in hosts
        }
        placed = await _placed_rows(session, list(found))
    return {uuid: (host, placed[uuid]) for uuid, host in found.items()}


async def _read_placed(ctx: NodeContext, host_uuids: list[str]) -> dict[str, dict[str, VmRowStamp]]:
    async with ctx.db.read_session() as session:
        return await _placed_rows(session, host_uuids)


async def _placed_rows(
    session: AsyncSession, host_uuids: list[str]
) -> dict[str, dict[str, VmRowStamp]]:
    """The VM rows placed on each host (every host asked has an entry, maybe empty)."""
    placed: dict[str, dict[str, VmRowStamp]] = {uuid: {} for uuid in host_uuids}
    vms = await session.execute(
        select(
            VmInstanceVO.uuid, VmInstanceVO.state, VmInstanceVO.host_uuid, VmInstanceVO.last_op_date
        ).where(VmInstanceVO.host_uuid.in_(host_uuids))
    )
    for row in vms:
        # Typed columns need no validation, and every ping's sync reads a host's VMs.
        placed[row.host_uuid][row.uuid] = VmRowStamp.model_construct(
            state=row.state, host_uuid=row.host_uuid, last_op_date=row.last_op_date
        )
    return placed


def _host_gone(host_uuid: str) -> ZError:
    return ZError(SysErr.RESOURCE_NOT_FOUND, f"no host with uuid {host_uuid}", uuid=host_uuid)


def _agrees(row: VmRowStamp, host_uuid: str, reported: str) -> bool:
    """Whether the row already says what the host reports."""
    if reported == VmState.STOPPED.value:
        return row.host_uuid != host_uuid or VmState(row.state) not in ON_HOST
    return row.host_uuid == host_uuid and row.state == reported


async def sync_host(ctx: NodeContext, host_uuid: str) -> HostSyncResult:
    """Compare the host's VM list with the database; each VM the host contradicts gets
    its correction (in its queue, on its owner). Run at every reconnect, and after every
    ping when the hypervisor asks for it (``kvm vmSyncOnHostPing``).

    The rows placed on the host are read *before* the host is asked, and each correction
    carries the row it was judged against: a VM an operation changed meanwhile (its row
    differs when the correction's turn comes) keeps what that operation made of it, since
    the host's answer may predate the operation. VMs in a transitional state are left to
    the operation at work."""
    host, placed = await placed_on_host(ctx, host_uuid)
    listed = (await backend_for(ctx, host.hypervisor_type).list_vm_states(host)).states
    return await reconcile_host(ctx, host_uuid, placed, listed)


async def placed_on_host(ctx: NodeContext, host_uuid: str) -> HostRows:
    """The host and the VM rows the database places on it, read with the other syncs'
    reads of the moment (two statements for them all)."""
    reads: BatchedReads[str, HostRows] = owned_by(
        ctx.db, "vm.sync.host", lambda: BatchedReads(partial(_read_hosts, ctx), _host_gone)
    )
    return await reads.read(host_uuid)


async def vms_placed_on(ctx: NodeContext, host_uuid: str) -> dict[str, VmRowStamp]:
    """The VM rows the database places on the host (a ping's sync: the host is known),
    read with the other pings' reads of the moment (one statement for them all)."""
    reads: BatchedReads[str, dict[str, VmRowStamp]] = owned_by(
        ctx.db, "vm.sync.placed", lambda: BatchedReads(partial(_read_placed, ctx), _host_gone)
    )
    return await reads.read(host_uuid)


async def reconcile_host(
    ctx: NodeContext, host_uuid: str, placed: dict[str, VmRowStamp], listed: dict[str, str]
) -> HostSyncResult:
    """The corrections of a sync: ``placed`` must have been read before the host made
    ``listed`` (see ``sync_host``)."""
    elsewhere = [uuid for uuid in listed if uuid not in placed]
    rows = placed | (await _stamps(ctx, VmInstanceVO.uuid.in_(elsewhere)) if elsewhere else {})
    result = HostSyncResult()
    for vm_uuid in sorted(placed.keys() | listed.keys()):
        row = rows.get(vm_uuid)
        reported = listed.get(vm_uuid, VmState.STOPPED.value)
        if row is None or (row.state == VmState.DESTROYED and reported in _RUNS):
            # Nobody's, or destroyed in the database though its guest runs on (a destroy
            # whose host command failed): strangers.py watches it.
            result.unknown_vms.append(vm_uuid)
            continue
        if _agrees(row, host_uuid, reported) or VmState(row.state) in TRANSITIONAL_STATES:
            continue
        result.reconciled[vm_uuid] = reported
        await _send(
            ctx,
            ReconcileVmStateMsg(
                vm_instance_uuid=vm_uuid, host_uuid=host_uuid, state=reported, expected=row
            ),
        )
    return result


async def _send(ctx: NodeContext, msg: ReconcileVmStateMsg) -> None:
    reply = await ctx.bus.call(msg)
    if not reply.success and reply.error is not None:
        log.warning(
            "syncing VM %s with host %s failed: %s",
            msg.vm_instance_uuid,
            msg.host_uuid,
            reply.error,
        )


# ----- VMs a dead node left in a transitional state ---------------------------------------

TRANSITIONAL_STATES = frozenset(
    {
        VmState.CREATED,
        VmState.STARTING,
        VmState.STOPPING,
        VmState.REBOOTING,
        VmState.PAUSING,
        VmState.RESUMING,
        VmState.MIGRATING,
        VmState.DESTROYING,
        VmState.EXPUNGING,
    }
)


async def transitional_vms(ctx: NodeContext) -> list[str]:
    async with ctx.db.session() as session:
        rows = await session.execute(
            select(VmInstanceVO.uuid).where(
                VmInstanceVO.state.in_([s.value for s in TRANSITIONAL_STATES])
            )
        )
        return list(rows.scalars())


async def _leave_host(ctx: NodeContext, vm: VmInstanceVO) -> bool:
    """Destroy the VM on its host (best effort: it may never have got there) and give the
    host its capacity back. False, changing nothing, while the node holds its agent
    commands (the database was away): the VM stays as it is for a later settle, instead
    of being written off while its guest may run on."""
    assert vm.host_uuid is not None
    try:
        host = await vm_host(ctx, vm.host_uuid)
        await backend_for(ctx, host.hypervisor_type).destroy_vm(
            VmOnHost(vm_uuid=vm.uuid, host=host)
        )
    except ZError as exc:
        if exc.code == SysErr.NOT_READY:
            log.info("VM %s: not settled yet: %s", vm.uuid, exc.description)
            return False
        log.warning("VM %s: destroy on its host failed: %s", vm.uuid, exc.description)
    await return_capacity(ctx, vm.host_uuid, vm)
    return True


async def settle(ctx: NodeContext, vm_uuid: str) -> bool:
    """A VM whose operation died with its node (in the VM's queue): a create that died is
    Error with its host's capacity returned (destroy and expunge it to clean up); a placed
    VM takes the state its host reports; a start that died before placing it is Stopped; a
    destroy or expunge that died is Destroyed (expunge again).
    Answers whether anything changed."""
    try:
        vm = await load_vm(ctx, vm_uuid)
    except ZError:
        return False
    state = VmState(vm.state)
    if state not in TRANSITIONAL_STATES:
        return False
    if state in (VmState.DESTROYING, VmState.EXPUNGING):
        if vm.host_uuid is not None and not await _leave_host(ctx, vm):
            return False  # a destroy that died before leaving the host: later
        await set_fields(ctx, vm_uuid, state=VmState.DESTROYED.value, host_uuid=None)
        await _announce(ctx, vm, left=vm.host_uuid)
        return True
    if vm.root_volume_uuid is None:
        # A create that died (its last step records the root volume) is Error: the
        # capacity its host reserved comes back here, and destroying and expunging it
        # releases the rest (volumes, addresses), as for any VM.
        if vm.host_uuid is not None and not await _leave_host(ctx, vm):
            return False
        await set_fields(ctx, vm_uuid, state=VmState.ERROR.value, host_uuid=None)
        await _announce(ctx, vm, left=vm.host_uuid)
        return True
    if vm.host_uuid is None:
        await set_fields(ctx, vm_uuid, state=VmState.STOPPED.value)  # a start that died
        return True
    try:
        host = await vm_host(ctx, vm.host_uuid)
        listed = (await backend_for(ctx, host.hypervisor_type).list_vm_states(host)).states
    except ZError as exc:
        log.info("VM %s: its host did not answer (%s): Unknown", vm_uuid, exc.description)
        await set_fields(ctx, vm_uuid, state=UNKNOWN)
        return True
    await reconcile(ctx, vm_uuid, vm.host_uuid, listed.get(vm_uuid, VmState.STOPPED.value))
    return True
