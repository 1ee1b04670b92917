"""Start, stop, reboot, pause, resume and migrate: each runs in the VM's work queue (the
caller holds it), shows its transitional state while it runs, and ends in a stable state
whatever happens: the new one on success, the one it started from on failure.

Host capacity follows the VM: a VM on a host (Running, Paused, Unknown, ...) holds its
CPU and memory there; a Stopped VM holds none and remembers ``last_host_uuid``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal

from zstackpy.core.context import NodeContext
from zstackpy.core.errors import SysErr, ZError
from zstackpy.services.host.messages import (
    AllocateHostMsg,
    AllocateHostReply,
    HostCandidate,
    HostErr,
    ReturnHostCapacityMsg,
)
from zstackpy.services.vm import placement_hooks
from zstackpy.services.vm.extensions import (
    VmBeforeStartExtension,
    VmHost,
    VmOnHost,
    VmPlacementEvent,
    VmStartEvent,
    VmStartSpec,
    VmStopRequest,
)
from zstackpy.services.vm.messages import VmErr, VmState
from zstackpy.services.vm.models import VmInstanceVO
from zstackpy.services.vm.records import (
    backend_for,
    load_nics,
    load_vm,
    nic_specs,
    set_fields,
    vm_host,
    vm_volumes,
)
from zstackpy.services.vm.states import TRANSITIONAL, VmOp, require_state
from zstackpy.services.volume.messages import VolumeView

log = logging.getLogger(__name__)

# An allocation that failed for these reasons on the last host is tried on any host.
_NO_ROOM = {HostErr.NO_AVAILABLE_HOST.value, HostErr.CAPACITY_EXHAUSTED.value}


@dataclass(frozen=True, slots=True)
class Placement:
    """Where a start may go: the host it must use (a named one, or the one whose local
    disk holds its volumes), the host it prefers (its last), the clusters allowed."""

    required_host: str | None
    preferred_host: str | None
    cluster_uuids: list[str]


async def begin(ctx: NodeContext, vm_uuid: str, op: VmOp) -> tuple[VmInstanceVO, VmState]:
    """Check ``op`` is allowed and store its transitional state; answers the row as read
    and the state to fall back to."""
    vm = await load_vm(ctx, vm_uuid)
    old = require_state(vm_uuid, vm.state, op)
    transitional = TRANSITIONAL.get(op)
    if transitional is not None:
        await set_fields(ctx, vm_uuid, state=transitional.value)
    return vm, old


async def fall_back(ctx: NodeContext, vm_uuid: str, state: VmState) -> None:
    """An operation failed: the VM returns to the state it started from."""
    try:
        await set_fields(ctx, vm_uuid, state=state.value)
    except Exception:  # the original error matters more; the row is logged as stuck
        log.exception("VM %s: could not restore state %s", vm_uuid, state.value)


async def reserve_host(
    ctx: NodeContext, vm: VmInstanceVO, volumes: list[VolumeView], placement: Placement
) -> HostCandidate:
    """A host for the VM with its CPU and memory reserved: the required host, else its
    last host if that still has room, else any host that fits."""
    nics = await load_nics(ctx, vm.uuid)

    def request(host_uuid: str | None) -> AllocateHostMsg:
        return AllocateHostMsg(
            vm_instance_uuid=vm.uuid,
            cpu_num=vm.cpu_num,
            memory_size=vm.memory_size,
            zone_uuid=vm.zone_uuid,
            cluster_uuids=placement.cluster_uuids,
            host_uuid=host_uuid,
            hypervisor_type=vm.hypervisor_type,
            l3_network_uuids=sorted({n.l3_network_uuid for n in nics}),
            primary_storage_uuids=sorted({v.primary_storage_uuid for v in volumes}),
            strategy=vm.allocator_strategy or "DefaultHostAllocatorStrategy",
        )

    first = placement.required_host or placement.preferred_host
    reply = await ctx.bus.call(request(first))
    if (
        not reply.success
        and placement.required_host is None
        and first is not None
        and reply.error is not None
        and reply.error.code in _NO_ROOM
    ):
        reply = await ctx.bus.call(request(None))
    reply.raise_if_error()
    if not isinstance(reply, AllocateHostReply) or reply.host is None:
        raise ZError(SysErr.INTERNAL, "the host allocator answered no host")
    return reply.host


async def return_capacity(ctx: NodeContext, host_uuid: str, vm: VmInstanceVO) -> None:
    """Give the VM's CPU and memory back to ``host_uuid``; a host that is gone (deleted
    meanwhile) has nothing to give back to."""
    reply = await ctx.bus.call(
        ReturnHostCapacityMsg(host_uuid=host_uuid, cpu_num=vm.cpu_num, memory_size=vm.memory_size)
    )
    if not reply.success:
        if reply.error is not None and reply.error.code == SysErr.RESOURCE_NOT_FOUND:
            return
        reply.raise_if_error()


def placement_of(
    vm: VmInstanceVO, volumes: list[VolumeView], host_uuid: str | None, cluster_uuid: str | None
) -> Placement:
    """Local storage pins a VM to the host whose disk holds its volumes."""
    pinned = sorted({v.host_uuid for v in volumes if v.host_uuid is not None})
    if len(pinned) > 1:
        raise ZError(
            VmErr.INVALID_SPEC,
            f"the volumes of VM {vm.uuid} are on the local disks of several hosts",
            uuid=vm.uuid,
            hostUuids=pinned,
        )
    if pinned and host_uuid is not None and host_uuid != pinned[0]:
        raise ZError(
            VmErr.INVALID_SPEC,
            f"VM {vm.uuid} has volumes on the local storage of host {pinned[0]}: it can "
            f"start only there, not on {host_uuid}",
            uuid=vm.uuid,
            hostUuid=host_uuid,
            localStorageHostUuid=pinned[0],
        )
    required = host_uuid or (pinned[0] if pinned else None)
    return Placement(
        required_host=required,
        preferred_host=None if required else vm.last_host_uuid,
        cluster_uuids=[cluster_uuid] if cluster_uuid else [],
    )


async def start(
    ctx: NodeContext, vm_uuid: str, host_uuid: str | None = None, cluster_uuid: str | None = None
) -> None:
    vm, old = await begin(ctx, vm_uuid, VmOp.START)
    host: HostCandidate | None = None
    sent: VmStartSpec | None = None  # set while a start command may be on the host
    arriving: VmPlacementEvent | None = None  # set once network services agreed
    try:
        volumes = await vm_volumes(ctx, vm_uuid)
        placement = placement_of(vm, volumes, host_uuid, cluster_uuid)
        host = await reserve_host(ctx, vm, volumes, placement)
        target = VmHost(host.uuid, host.management_ip, host.hypervisor_type)
        spec = await start_spec(ctx, vm, target, volumes)
        for extension in ctx.plugins.extensions(VmBeforeStartExtension):
            await extension.before_vm_start(VmStartEvent(spec=spec, is_new=False))
        event = placement_hooks.event(vm_uuid, target, spec.nics, "start", spec.hostname)
        await placement_hooks.arriving(ctx, event)
        arriving = event
        sent = spec
        await backend_for(ctx, target.hypervisor_type).start_vm(spec)
        sent = None  # started: nothing to undo on the host from here
        await set_fields(
            ctx,
            vm_uuid,
            state=VmState.RUNNING.value,
            host_uuid=host.uuid,
            last_host_uuid=host.uuid,
            cluster_uuid=host.cluster_uuid,
            hypervisor_type=host.hypervisor_type,
        )
    except BaseException:
        await _undo_start(ctx, vm, host, sent)
        if arriving is not None:
            await placement_hooks.left(ctx, placement_hooks.failed(arriving))
        await fall_back(ctx, vm_uuid, old)
        raise
    await placement_hooks.arrived(ctx, arriving)


async def _undo_start(
    ctx: NodeContext, vm: VmInstanceVO, host: HostCandidate | None, spec: VmStartSpec | None
) -> None:
    """A start failed: the agent may have defined the VM before failing (or timing out),
    so destroy it there; give the reservation back. Best effort: the start's own error is
    what the caller must see."""
    if spec is not None:
        try:
            backend = backend_for(ctx, spec.host.hypervisor_type)
            await backend.destroy_vm(VmOnHost(vm_uuid=vm.uuid, host=spec.host, nics=spec.nics))
        except Exception:
            log.exception("VM %s: destroying a failed start on host %s failed", vm.uuid, host)
    # Whatever the destroy did: the VM falls back to a state off the host, so the host's
    # books must not keep its reservation (a guest the agent still defines is found by
    # the host's next state sync, which books it again).
    if host is not None:
        try:
            await return_capacity(ctx, host.uuid, vm)
        except Exception:
            log.exception("VM %s: returning the capacity of host %s failed", vm.uuid, host)


async def start_spec(
    ctx: NodeContext, vm: VmInstanceVO, host: VmHost, volumes: list[VolumeView]
) -> VmStartSpec:
    roots = [v for v in volumes if v.type == "Root"]
    if not roots:
        raise ZError(
            SysErr.OPERATION, f"VM {vm.uuid} has no root volume: it cannot boot", uuid=vm.uuid
        )
    nics = await nic_specs(ctx, await load_nics(ctx, vm.uuid), vm.default_l3_network_uuid)
    return VmStartSpec(
        vm_uuid=vm.uuid,
        name=vm.name,
        internal_id=vm.internal_id,
        host=host,
        cpu_num=vm.cpu_num,
        cpu_speed=vm.cpu_speed,
        memory_size=vm.memory_size,
        platform=vm.platform,
        architecture=vm.architecture,
        root_volume=roots[0],
        data_volumes=tuple(v for v in volumes if v.type == "Data"),
        nics=nics,
    )


async def _on_host(ctx: NodeContext, vm: VmInstanceVO) -> VmHost:
    if vm.host_uuid is None:
        raise ZError(SysErr.OPERATION, f"VM {vm.uuid} is {vm.state} but on no host", uuid=vm.uuid)
    return await vm_host(ctx, vm.host_uuid)


async def stop(
    ctx: NodeContext, vm_uuid: str, stop_type: str = "grace", *, give_back: bool = True
) -> None:
    """Stop the VM on its host. ``give_back=False``: its host is being deleted (in the
    host's queue, which a capacity return would wait for), so its books do not matter."""
    vm, old = await begin(ctx, vm_uuid, VmOp.STOP)
    try:
        host = await _on_host(ctx, vm)
        nics = await nic_specs(ctx, await load_nics(ctx, vm_uuid), vm.default_l3_network_uuid)
        kind: Literal["grace", "cold"] = "cold" if stop_type == "cold" else "grace"
        await backend_for(ctx, host.hypervisor_type).stop_vm(
            VmStopRequest(vm_uuid=vm_uuid, host=host, type=kind, nics=nics)
        )
    except BaseException:
        await fall_back(ctx, vm_uuid, old)
        raise
    await stopped(ctx, vm, host.uuid, give_back=give_back)
    await placement_hooks.left(ctx, placement_hooks.event(vm_uuid, host, nics, "stop"))


async def stopped(
    ctx: NodeContext, vm: VmInstanceVO, host_uuid: str, *, give_back: bool = True
) -> None:
    """The VM is no longer on ``host_uuid``: Stopped, remembering the host, capacity back."""
    await set_fields(
        ctx, vm.uuid, state=VmState.STOPPED.value, host_uuid=None, last_host_uuid=host_uuid
    )
    if give_back:
        await return_capacity(ctx, host_uuid, vm)


async def _simple(ctx: NodeContext, vm_uuid: str, op: VmOp, final: VmState) -> None:
    """Reboot, pause, resume: one agent call on the VM's host."""
    vm, old = await begin(ctx, vm_uuid, op)
    try:
        host = await _on_host(ctx, vm)
        backend = backend_for(ctx, host.hypervisor_type)
        request = VmOnHost(vm_uuid=vm_uuid, host=host)
        if op is VmOp.REBOOT:
            await backend.reboot_vm(request)
        elif op is VmOp.PAUSE:
            await backend.pause_vm(request)
        else:
            await backend.resume_vm(request)
    except BaseException:
        await fall_back(ctx, vm_uuid, old)
        raise
    await set_fields(ctx, vm_uuid, state=final.value)


async def reboot(ctx: NodeContext, vm_uuid: str) -> None:
    await _simple(ctx, vm_uuid, VmOp.REBOOT, VmState.RUNNING)


async def pause(ctx: NodeContext, vm_uuid: str) -> None:
    await _simple(ctx, vm_uuid, VmOp.PAUSE, VmState.PAUSED)


async def resume(ctx: NodeContext, vm_uuid: str) -> None:
    await _simple(ctx, vm_uuid, VmOp.RESUME, VmState.RUNNING)
