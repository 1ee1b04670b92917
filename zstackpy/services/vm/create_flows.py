"""The flows of ``flows/vm-create.yaml`` (CreateVmInstance), one context: ``CreateVmCtx``.

The chain runs in the new VM's work queue. Each step records what it made in the context
*before* asking for it, so its rollback undoes exactly that, even after a timeout; every
undo message is idempotent (DeleteVolumeMsg, ReleaseIpMsg, ``/vm/destroy``). A failed
create leaves nothing: no VM row, no NIC, no address, no volume, no capacity taken.

The host is allocated first and the VM row, inserted next, names it: a node that dies
mid-create leaves a row from which the next owner returns the capacity (sync.settle). The
row is inserted Starting (InstantStart) or Created (CreateStopped/JustCreate) and becomes
Running or Stopped in the last step; a rollback deletes it, so no VM is ever left in a
transitional state by a failed create.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from zstackpy.api.ownership import add_resource, remove_resources
from zstackpy.core.context import NodeContext
from zstackpy.core.errors import SysErr, ZError
from zstackpy.core.flow import Flow
from zstackpy.core.ids import new_uuid
from zstackpy.services.host.messages import (
    AllocateHostMsg,
    AllocateHostReply,
    HostCandidate,
    ReturnHostCapacityMsg,
)
from zstackpy.services.image.messages import ImageStatus
from zstackpy.services.network.messages import L3NetworkSummary
from zstackpy.services.vm import placement_hooks
from zstackpy.services.vm.api import APICreateVmInstanceMsg
from zstackpy.services.vm.create_spec import CreateSpec, new_vm_row, resolve
from zstackpy.services.vm.extensions import (
    VmBeforeStartExtension,
    VmHost,
    VmNicSpec,
    VmOnHost,
    VmPlacementEvent,
    VmStartEvent,
    VmStartSpec,
)
from zstackpy.services.vm.messages import VM_RESOURCE_TYPE, VmState
from zstackpy.services.vm.models import VmInstanceSequenceNumberVO, VmInstanceVO, VmNicVO
from zstackpy.services.vm.nics import (
    AllocatedIp,
    allocate_ip,
    delete_nic_rows,
    insert_nics,
    release_ip,
)
from zstackpy.services.vm.records import backend_for, set_fields
from zstackpy.services.vm.reference_reads import ReferenceReads
from zstackpy.services.volume.messages import (
    CreateDataVolumeForVmMsg,
    CreateRootVolumeMsg,
    DeleteVolumeMsg,
    VolumeReply,
    VolumeView,
)

# Making a volume may copy an image into the storage's cache first: give it time.
VOLUME_TIMEOUT_S = 3600.0
START_TIMEOUT_S = 300.0
# Pauses between the attempts of a rollback's destroy on the host (15 s in all).
_DESTROY_RETRY_PAUSES_S = (1.0, 2.0, 4.0, 8.0)

log = logging.getLogger(__name__)


@dataclass
class CreateVmCtx:
    node: NodeContext
    msg: APICreateVmInstanceMsg
    reads: ReferenceReads  # the VM service's, shared by concurrent creates
    vm_type: str = "UserVm"  # ApplianceVm for CreateApplianceVmMsg
    # resolve-vm-create
    spec: CreateSpec | None = None
    # create-vm-row
    internal_id: int = 0
    row_created: bool = False
    # allocate-host: the host, and whether its capacity is still reserved for this VM
    host: HostCandidate | None = None
    capacity_reserved: bool = False
    # create-root-volume / create-data-volumes: uuids recorded before asking
    root_volume_uuid: str | None = None
    root_volume: VolumeView | None = None
    data_volume_uuids: list[str] = field(default_factory=list)
    data_volumes: list[VolumeView] = field(default_factory=list)
    # allocate-nics: addresses recorded as allocated, then the rows
    ips: list[AllocatedIp] = field(default_factory=list)
    nics: list[VmNicVO] = field(default_factory=list)
    # start-on-hypervisor: set before the agent call, so a timeout is undone too
    start_sent: bool = False
    arriving: VmPlacementEvent | None = None  # network services agreed to the VM's arrival

    @property
    def vm_uuid(self) -> str:
        assert self.msg.resource_uuid is not None  # the portal gives every create its UUID
        return self.msg.resource_uuid

    @property
    def starts(self) -> bool:
        return self.msg.strategy == "InstantStart"

    def resolved(self) -> CreateSpec:
        assert self.spec is not None, "resolve-vm-create runs first"
        return self.spec

    def chosen_host(self) -> HostCandidate:
        assert self.host is not None, "allocate-host runs first"
        return self.host

    def vm_host(self) -> VmHost:
        host = self.chosen_host()
        return VmHost(host.uuid, host.management_ip, host.hypervisor_type)


class ResolveVmCreate(Flow[CreateVmCtx]):
    """Check the request (create_spec.resolve): reads only."""

    async def run(self, ctx: CreateVmCtx) -> None:
        ctx.spec = await resolve(ctx.node, ctx.msg, ctx.reads)


class CreateVmRow(Flow[CreateVmCtx]):
    """The VM's row (on its allocated host), its internal id and its ResourceVO row, in
    one transaction."""

    async def run(self, ctx: CreateVmCtx) -> None:
        spec, msg, uuid = ctx.resolved(), ctx.msg, ctx.vm_uuid
        state = VmState.STARTING if ctx.starts else VmState.CREATED

        sequence = VmInstanceSequenceNumberVO(vm_instance_uuid=uuid)

        def take_number(session: AsyncSession) -> None:
            # A number is the database's to give: it comes with the batch's flush.
            session.add(sequence)

        async def insert(session: AsyncSession) -> int:
            session.add(
                new_vm_row(
                    uuid, msg, spec, ctx.chosen_host(), sequence.id, state, vm_type=ctx.vm_type
                )
            )
            add_resource(
                session,
                uuid=uuid,
                resource_type=VM_RESOURCE_TYPE,
                name=msg.name,
                auth=msg.require_auth(),
            )
            return sequence.id

        try:
            ctx.internal_id = await ctx.node.db.write(insert, prepare=take_number)
        except IntegrityError:
            # Two creates with one resourceUuid: the primary key decided.
            raise ZError(
                SysErr.CREATE_RESOURCE, f"a VM with uuid {uuid} exists", uuid=uuid
            ) from None
        ctx.row_created = True

    async def rollback(self, ctx: CreateVmCtx) -> None:
        if not ctx.row_created:
            return
        async with ctx.node.db.session() as session, session.begin():
            await session.execute(delete(VmInstanceVO).where(VmInstanceVO.uuid == ctx.vm_uuid))
            await remove_resources(session, [ctx.vm_uuid])
        ctx.row_created = False


class AllocateVmHost(Flow[CreateVmCtx]):
    """A host with room for the VM's CPU, memory and disks, on its L3 networks' wires and
    reaching its image; its CPU and memory are reserved (in the host's queue)."""

    async def run(self, ctx: CreateVmCtx) -> None:
        spec, msg = ctx.resolved(), ctx.msg
        reply = await ctx.node.bus.request(
            AllocateHostMsg(
                vm_instance_uuid=ctx.vm_uuid,
                cpu_num=spec.cpu_num,
                memory_size=spec.memory_size,
                zone_uuid=spec.zone_uuid,
                cluster_uuids=[msg.cluster_uuid] if msg.cluster_uuid else [],
                host_uuid=msg.host_uuid,
                l3_network_uuids=[n.uuid for n in spec.networks],
                l3_cluster_uuids=_clusters_reaching(spec.networks),
                image_uuid=spec.image.uuid,
                image_ready_on=[
                    ref.backup_storage_uuid
                    for ref in spec.image.backup_storage_refs
                    if ref.status == ImageStatus.READY
                ],
                primary_storage_uuids=(
                    [msg.primary_storage_uuid_for_root_volume]
                    if msg.primary_storage_uuid_for_root_volume
                    else []
                ),
                disk_size=spec.disk_size,
                strategy=spec.allocator_strategy,
            ),
            # No timeout of its own: an allocation waits in the hosts' queues behind every
            # concurrent creation (a burst of 1,000 takes minutes), which the job's deadline
            # bounds (core.bus.deadline), not the bus default.
            AllocateHostReply,
        )
        if reply.host is None:
            raise ZError(SysErr.INTERNAL, "the host allocator answered no host")
        ctx.host, ctx.capacity_reserved = reply.host, True

    async def rollback(self, ctx: CreateVmCtx) -> None:
        await return_capacity(ctx)


class CreateVmRootVolume(Flow[CreateVmCtx]):
    async def run(self, ctx: CreateVmCtx) -> None:
        spec, msg, host = ctx.resolved(), ctx.msg, ctx.chosen_host()
        ctx.root_volume_uuid = new_uuid()
        reply = await ctx.node.bus.request(
            CreateRootVolumeMsg(
                volume_uuid=ctx.root_volume_uuid,
                name=f"ROOT-for-{msg.name}",
                vm_instance_uuid=ctx.vm_uuid,
                host_uuid=host.uuid,
                cluster_uuid=host.cluster_uuid,
                image_uuid=spec.image.uuid,
                image=spec.image,
                size=spec.root_size,
                primary_storage_uuid=msg.primary_storage_uuid_for_root_volume,
                disk_offering_uuid=spec.root_disk_offering_uuid,
                account_uuid=msg.require_auth().account_uuid,
            ),
            VolumeReply,
            timeout=VOLUME_TIMEOUT_S,
        )
        if reply.volume is None:
            raise ZError(SysErr.INTERNAL, "the volume service answered no root volume")
        ctx.root_volume = reply.volume

    async def rollback(self, ctx: CreateVmCtx) -> None:
        if ctx.root_volume_uuid is not None:
            await _expunge_volume(ctx.node, ctx.root_volume_uuid)
            ctx.root_volume_uuid = ctx.root_volume = None


class CreateVmDataVolumes(Flow[CreateVmCtx]):
    """One empty data volume per data disk, at device ids 1, 2, ..."""

    async def run(self, ctx: CreateVmCtx) -> None:
        spec, msg, host = ctx.resolved(), ctx.msg, ctx.chosen_host()
        for index, disk in enumerate(spec.data_disks, start=1):
            uuid = new_uuid()
            ctx.data_volume_uuids.append(uuid)
            reply = await ctx.node.bus.request(
                CreateDataVolumeForVmMsg(
                    volume_uuid=uuid,
                    name=f"DATA-for-{msg.name}-{index}",
                    vm_instance_uuid=ctx.vm_uuid,
                    host_uuid=host.uuid,
                    cluster_uuid=host.cluster_uuid,
                    size=disk.size,
                    device_id=index,
                    disk_offering_uuid=disk.disk_offering_uuid,
                    account_uuid=msg.require_auth().account_uuid,
                ),
                VolumeReply,
                timeout=VOLUME_TIMEOUT_S,
            )
            if reply.volume is None:
                raise ZError(SysErr.INTERNAL, "the volume service answered no data volume")
            ctx.data_volumes.append(reply.volume)

    async def rollback(self, ctx: CreateVmCtx) -> None:
        for uuid in reversed(ctx.data_volume_uuids):
            await _expunge_volume(ctx.node, uuid)
        ctx.data_volume_uuids.clear()
        ctx.data_volumes.clear()


class AllocateVmNics(Flow[CreateVmCtx]):
    """One address per L3 network (a ``staticIp::`` tag's, if any), then the NIC rows with
    their MACs, device ids 0, 1, ... in the order of ``l3NetworkUuids``."""

    async def run(self, ctx: CreateVmCtx) -> None:
        spec = ctx.resolved()
        for device_id, net in enumerate(spec.networks):
            nic_uuid = new_uuid()
            ip = await allocate_ip(ctx.node, net.uuid, nic_uuid, spec.static_ips.get(net.uuid))
            ctx.ips.append(AllocatedIp(nic_uuid, device_id, ip))
        ctx.nics = await insert_nics(
            ctx.node,
            ctx.vm_uuid,
            ctx.internal_id,
            ctx.chosen_host().hypervisor_type,
            ctx.ips,
            ctx.msg.require_auth(),
        )

    async def rollback(self, ctx: CreateVmCtx) -> None:
        await delete_nic_rows(ctx.node, [a.nic_uuid for a in ctx.ips])
        ctx.nics.clear()
        for allocated in reversed(ctx.ips):
            await release_ip(ctx.node, allocated.ip.l3_network_uuid, allocated.ip.uuid)
        ctx.ips.clear()


class StartVmOnHypervisor(Flow[CreateVmCtx]):
    """Define and boot the VM on its host (not for CreateStopped/JustCreate), after every
    VmBeforeStartExtension agreed."""

    async def run(self, ctx: CreateVmCtx) -> None:
        if not ctx.starts:
            return
        spec = start_spec(ctx)
        for extension in ctx.node.plugins.extensions(VmBeforeStartExtension):
            await extension.before_vm_start(VmStartEvent(spec=spec, is_new=True))
        event = placement_hooks.event(
            ctx.vm_uuid,
            spec.host,
            spec.nics,
            "create",
            spec.hostname,
            system_tags=tuple(ctx.msg.system_tags),
        )
        await placement_hooks.arriving(ctx.node, event)
        ctx.arriving = event
        backend = backend_for(ctx.node, spec.host.hypervisor_type)
        ctx.start_sent = True
        await backend.start_vm(spec)

    async def rollback(self, ctx: CreateVmCtx) -> None:
        if ctx.start_sent:
            backend = backend_for(ctx.node, ctx.chosen_host().hypervisor_type)
            target = VmOnHost(vm_uuid=ctx.vm_uuid, host=ctx.vm_host())
            # The start's outcome may be unknown (its host's owner left, the broker
            # reconnected) and the guest there: the destroy must reach the host, or the
            # guest runs on with no VM row left to say whose it is. A host its new owner
            # is still reconnecting refuses for a moment, so try again before giving up.
            for pause in (*_DESTROY_RETRY_PAUSES_S, None):
                try:
                    await backend.destroy_vm(target)
                    break
                except ZError as exc:
                    if pause is None:
                        raise
                    log.info("VM %s: destroy on rollback failed (%s); again", ctx.vm_uuid, exc)
                    await asyncio.sleep(pause)
            ctx.start_sent = False
        if ctx.arriving is not None:
            await placement_hooks.left(ctx.node, placement_hooks.failed(ctx.arriving))
            ctx.arriving = None


class FinishVmCreate(Flow[CreateVmCtx]):
    """Running on its host, or Stopped with its host remembered (last host: a VM on local
    storage must start there) and its capacity given back."""

    async def run(self, ctx: CreateVmCtx) -> None:
        host = ctx.chosen_host()
        await set_fields(
            ctx.node,
            ctx.vm_uuid,
            state=(VmState.RUNNING if ctx.starts else VmState.STOPPED).value,
            host_uuid=host.uuid if ctx.starts else None,
            last_host_uuid=host.uuid,
            cluster_uuid=host.cluster_uuid,
            hypervisor_type=host.hypervisor_type,
            root_volume_uuid=ctx.root_volume_uuid,
        )
        if not ctx.starts:
            await return_capacity(ctx)
        elif ctx.arriving is not None:
            await placement_hooks.arrived(ctx.node, ctx.arriving)


def _clusters_reaching(networks: list[L3NetworkSummary]) -> list[str] | None:
    """The clusters attached to the L2 of every network (None: no network)."""
    if not networks:
        return None
    return sorted(set.intersection(*(set(n.attached_cluster_uuids) for n in networks)))


def start_spec(ctx: CreateVmCtx) -> VmStartSpec:
    spec, host = ctx.resolved(), ctx.vm_host()
    assert ctx.root_volume is not None, "create-root-volume runs first"
    bridges = {net.uuid: net.bridge_name for net in spec.networks}
    nics = tuple(
        VmNicSpec(
            uuid=n.uuid,
            l3_network_uuid=n.l3_network_uuid,
            mac=n.mac,
            ip=n.ip,
            netmask=n.netmask,
            gateway=n.gateway,
            device_id=n.device_id,
            internal_name=n.internal_name,
            bridge_name=bridges[n.l3_network_uuid],
            is_default=n.l3_network_uuid == spec.default_l3_uuid,
            driver_type=n.driver_type,
        )
        for n in ctx.nics
    )
    return VmStartSpec(
        vm_uuid=ctx.vm_uuid,
        name=ctx.msg.name,
        internal_id=ctx.internal_id,
        host=host,
        cpu_num=spec.cpu_num,
        cpu_speed=spec.cpu_speed,
        memory_size=spec.memory_size,
        platform=spec.platform,
        architecture=spec.architecture,
        root_volume=ctx.root_volume,
        data_volumes=tuple(ctx.data_volumes),
        nics=nics,
        hostname=spec.hostname,
        timeout=START_TIMEOUT_S,
    )


async def return_capacity(ctx: CreateVmCtx) -> None:
    if not ctx.capacity_reserved or ctx.host is None:
        return
    spec = ctx.resolved()
    reply = await ctx.node.bus.call(
        ReturnHostCapacityMsg(
            host_uuid=ctx.host.uuid, cpu_num=spec.cpu_num, memory_size=spec.memory_size
        )
    )
    reply.raise_if_error()
    ctx.capacity_reserved = False


async def _expunge_volume(node: NodeContext, volume_uuid: str) -> None:
    reply = await node.bus.call(
        DeleteVolumeMsg(volume_uuid=volume_uuid, expunge=True), timeout=VOLUME_TIMEOUT_S
    )
    reply.raise_if_error()


CREATE_FLOWS: dict[str, type[Flow[CreateVmCtx]]] = {
    "resolve-vm-create": ResolveVmCreate,
    "create-vm-row": CreateVmRow,
    "allocate-vm-host": AllocateVmHost,
    "create-vm-root-volume": CreateVmRootVolume,
    "create-vm-data-volumes": CreateVmDataVolumes,
    "allocate-vm-nics": AllocateVmNics,
    "start-vm-on-hypervisor": StartVmOnHypervisor,
    "finish-vm-create": FinishVmCreate,
}
