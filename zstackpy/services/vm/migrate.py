"""Live migration and its candidate hosts. Runs in the VM's queue (the caller holds it).

The target's CPU and memory are reserved first (AllocateHostMsg, excluding the VM's own
host), then the source's agent migrates the VM, then the source's capacity goes back: at
no moment does the VM run on a host that did not reserve it. A VM whose volumes are on a
host's local disk cannot move without its storage: refused (VM.1004).
"""

from __future__ import annotations

from sqlalchemy import select

from zstackpy.core.context import NodeContext
from zstackpy.core.errors import SysErr, ZError
from zstackpy.services.host.messages import (
    AllocateHostMsg,
    AllocateHostReply,
    HostCandidate,
    HostInventory,
)
from zstackpy.services.host.models import HostVO
from zstackpy.services.vm import placement_hooks
from zstackpy.services.vm.extensions import VmHost, VmMigrateRequest, VmPlacementEvent
from zstackpy.services.vm.lifecycle import begin, fall_back, return_capacity
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
from zstackpy.services.vm.states import VmOp, require_state
from zstackpy.services.volume.messages import VolumeView


def _refuse_local_storage(vm: VmInstanceVO, volumes: list[VolumeView]) -> None:
    local = sorted({v.uuid for v in volumes if v.host_uuid is not None})
    if local:
        raise ZError(
            VmErr.MIGRATION_REFUSED,
            f"VM {vm.uuid} has volumes on its host's local storage ({', '.join(local)}): "
            "live migration moves memory, not local disks",
            uuid=vm.uuid,
            volumeUuids=local,
        )


async def _request(
    ctx: NodeContext,
    vm: VmInstanceVO,
    volumes: list[VolumeView],
    target_uuid: str | None,
    *,
    dry_run: bool,
) -> AllocateHostMsg:
    """Any host but the VM's own, on its networks' wires, reaching its volumes' storage."""
    nics = await load_nics(ctx, vm.uuid)
    return AllocateHostMsg(
        vm_instance_uuid=vm.uuid,
        cpu_num=vm.cpu_num,
        memory_size=vm.memory_size,
        zone_uuid=vm.zone_uuid,
        host_uuid=target_uuid,
        excluded_host_uuids=[vm.host_uuid] if vm.host_uuid else [],
        hypervisor_type=vm.hypervisor_type,
        l3_network_uuids=sorted({n.l3_network_uuid for n in nics}),
        primary_storage_uuids=sorted({v.primary_storage_uuid for v in volumes}),
        strategy=vm.allocator_strategy or "DefaultHostAllocatorStrategy",
        dry_run=dry_run,
    )


async def migrate(ctx: NodeContext, vm_uuid: str, target_uuid: str | None) -> None:
    vm = await load_vm(ctx, vm_uuid)
    require_state(vm_uuid, vm.state, VmOp.MIGRATE)
    if target_uuid is not None and target_uuid == vm.host_uuid:
        raise ZError(
            VmErr.MIGRATION_REFUSED,
            f"VM {vm_uuid} already runs on host {target_uuid}",
            uuid=vm_uuid,
            hostUuid=target_uuid,
        )
    volumes = await vm_volumes(ctx, vm_uuid)
    _refuse_local_storage(vm, volumes)
    if vm.host_uuid is None:
        raise ZError(SysErr.OPERATION, f"VM {vm_uuid} is Running but on no host", uuid=vm_uuid)
    source = await vm_host(ctx, vm.host_uuid)
    vm, old = await begin(ctx, vm_uuid, VmOp.MIGRATE)
    target: HostCandidate | None = None
    arriving: VmPlacementEvent | None = None  # set once network services agreed
    try:
        reply = await ctx.bus.request(
            await _request(ctx, vm, volumes, target_uuid, dry_run=False), AllocateHostReply
        )
        if reply.host is None:
            raise ZError(SysErr.INTERNAL, "the host allocator answered no host")
        target = reply.host
        nics = await nic_specs(ctx, await load_nics(ctx, vm_uuid), vm.default_l3_network_uuid)
        target_host = VmHost(target.uuid, target.management_ip, target.hypervisor_type)
        # The VM arrives protected: its services are on the target before it moves.
        event = placement_hooks.event(vm_uuid, target_host, nics, "migrate")
        await placement_hooks.arriving(ctx, event)
        arriving = event
        await backend_for(ctx, source.hypervisor_type).migrate_vm(
            VmMigrateRequest(
                vm_uuid=vm_uuid,
                source=source,
                target=target_host,
                volumes=tuple(volumes),
                nics=nics,
            )
        )
    except BaseException:
        if arriving is not None:
            await placement_hooks.left(ctx, placement_hooks.failed(arriving))
        if target is not None:
            await return_capacity(ctx, target.uuid, vm)
        await fall_back(ctx, vm_uuid, old)
        raise
    await set_fields(
        ctx,
        vm_uuid,
        state=VmState.RUNNING.value,
        host_uuid=target.uuid,
        last_host_uuid=source.uuid,
        cluster_uuid=target.cluster_uuid,
    )
    await placement_hooks.arrived(ctx, arriving)
    departure = placement_hooks.event(vm_uuid, source, arriving.nics, "migrate")
    await placement_hooks.left(ctx, departure)
    await return_capacity(ctx, source.uuid, vm)


async def candidate_hosts(ctx: NodeContext, vm_uuid: str) -> list[HostInventory]:
    """Where the VM could migrate now (a dry-run allocation: nothing is reserved)."""
    vm = await load_vm(ctx, vm_uuid)
    require_state(vm_uuid, vm.state, VmOp.MIGRATE)
    volumes = await vm_volumes(ctx, vm_uuid)
    _refuse_local_storage(vm, volumes)
    reply = await ctx.bus.call(await _request(ctx, vm, volumes, None, dry_run=True))
    if not reply.success:
        # No host fits: an empty list, as ZStack answers, rather than an error.
        return []
    assert isinstance(reply, AllocateHostReply)
    uuids = [c.uuid for c in reply.candidates]
    if not uuids:
        return []
    async with ctx.db.session() as session:
        rows = (await session.execute(select(HostVO).where(HostVO.uuid.in_(uuids)))).scalars()
        by_uuid = {r.uuid: HostInventory.model_validate(r, from_attributes=True) for r in rows}
    return [by_uuid[u] for u in uuids if u in by_uuid]
