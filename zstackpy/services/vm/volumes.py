"""The VM side of data volume attach and detach (the volume service asks, in the VM's
queue), and where a VM is (GetVmPlacementMsg, a read)."""

from __future__ import annotations

import time

from sqlalchemy import func, select

from zstackpy.core.context import NodeContext
from zstackpy.core.errors import ZError
from zstackpy.services.vm.extensions import VmVolumeRequest
from zstackpy.services.vm.messages import (
    AttachVolumeToVmMsg,
    AttachVolumeToVmReply,
    DetachVolumeFromVmMsg,
    GetVmPlacementMsg,
    GetVmPlacementReply,
    VmErr,
    VmState,
)
from zstackpy.services.vm.models import VmInstanceVO
from zstackpy.services.vm.records import backend_for, load_vm, require_vm, vm_host, vm_volumes
from zstackpy.services.vm.states import VmOp, require_state
from zstackpy.services.volume.models import VolumeVO

# How long a device id handed to an attach stays reserved while the volume service has
# not yet recorded it on the volume's row.
_HANDED_OUT_S = 60.0
_LIVE = (VmState.RUNNING, VmState.PAUSED)


class DeviceIds:
    """Device ids of data volumes per VM. The volume service records an attach's device
    id after the VM answered, so ids handed out recently count as taken until the volume
    rows show them: two attaches in a row never get the same id."""

    def __init__(self) -> None:
        self._handed: dict[str, dict[int, float]] = {}

    def next_free(self, vm_uuid: str, used: set[int], wanted: int | None) -> int:
        now = time.monotonic()
        handed = self._handed.setdefault(vm_uuid, {})
        for device, at in list(handed.items()):
            if device in used or now - at > _HANDED_OUT_S:
                del handed[device]
        taken = used | set(handed) | {0}  # 0 is the root volume's
        device = wanted if wanted is not None and wanted not in taken else 1
        while device in taken:
            device += 1
        handed[device] = now
        return device

    def forget(self, vm_uuid: str) -> None:
        self._handed.pop(vm_uuid, None)


async def attach(
    ctx: NodeContext, devices: DeviceIds, msg: AttachVolumeToVmMsg
) -> AttachVolumeToVmReply:
    vm = await load_vm(ctx, msg.vm_instance_uuid)
    state = require_state(vm.uuid, vm.state, VmOp.ATTACH_VOLUME)
    volumes = await vm_volumes(ctx, vm.uuid)
    for attached in volumes:
        if attached.uuid == msg.volume.uuid and attached.device_id is not None:
            return AttachVolumeToVmReply(device_id=attached.device_id)  # attached already
    host_uuid = vm.host_uuid if state in _LIVE else vm.last_host_uuid
    if msg.volume.host_uuid is not None and host_uuid not in (None, msg.volume.host_uuid):
        raise ZError(
            VmErr.INVALID_SPEC,
            f"volume {msg.volume.uuid} is on the local storage of host {msg.volume.host_uuid}; "
            f"VM {vm.uuid} is on host {host_uuid}",
            uuid=vm.uuid,
            volumeUuid=msg.volume.uuid,
        )
    used = {v.device_id for v in volumes if v.device_id is not None}
    device = devices.next_free(vm.uuid, used, msg.volume.device_id)
    if state in _LIVE and vm.host_uuid is not None:
        host = await vm_host(ctx, vm.host_uuid)
        volume = msg.volume.model_copy(update={"device_id": device})
        await backend_for(ctx, host.hypervisor_type).attach_volume(
            VmVolumeRequest(vm_uuid=vm.uuid, host=host, volume=volume)
        )
    return AttachVolumeToVmReply(device_id=device)


async def detach(ctx: NodeContext, msg: DetachVolumeFromVmMsg) -> None:
    vm = await load_vm(ctx, msg.vm_instance_uuid)
    state = require_state(vm.uuid, vm.state, VmOp.DETACH_VOLUME)
    if state in _LIVE and vm.host_uuid is not None:
        host = await vm_host(ctx, vm.host_uuid)
        await backend_for(ctx, host.hypervisor_type).detach_volume(
            VmVolumeRequest(vm_uuid=vm.uuid, host=host, volume=msg.volume)
        )


async def placement(ctx: NodeContext, msg: GetVmPlacementMsg) -> GetVmPlacementReply:
    async with ctx.db.session() as session:
        vm: VmInstanceVO = await require_vm(session, msg.vm_instance_uuid)
        size = await session.scalar(
            select(func.coalesce(func.sum(VolumeVO.size), 0)).where(
                VolumeVO.vm_instance_uuid == vm.uuid
            )
        )
    return GetVmPlacementReply(
        state=vm.state,
        host_uuid=vm.host_uuid,
        last_host_uuid=vm.last_host_uuid,
        cluster_uuid=vm.cluster_uuid,
        zone_uuid=vm.zone_uuid,
        volumes_size=int(size or 0),
    )
