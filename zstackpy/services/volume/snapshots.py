"""The volume snapshot service: create (live on the VM's host while the VM runs, else
by the storage's agent) and update here; revert, delete and removal with the volume in
snapshot_tree.py.

A snapshot changes its volume's file (qcow2 external snapshots: the volume's file becomes
the snapshot, a new file takes the writes), so every snapshot operation runs in the
volume's queue on the volume's owner; APIs addressed by a snapshot uuid forward there
(VolumeSnapshotActionMsg).

Capacity: taking a snapshot reserves its volume's size first (the most the snapshot can
hold), then gives back what the agent reports it did not use, so the snapshot keeps
exactly its ``size`` until it is deleted.
"""

from __future__ import annotations

import posixpath
from typing import Literal

from sqlalchemy import select, update

from zstackpy.api.ownership import add_resource, may_use
from zstackpy.core.bus.message import Reply
from zstackpy.core.errors import SysErr, ZError
from zstackpy.core.ids import new_uuid
from zstackpy.core.service import handles
from zstackpy.services.host.messages import HostAgentCallMsg, HostAgentCallReply
from zstackpy.services.primary_storage.messages import (
    AllocatePrimaryStorageCapacityMsg,
    AllocatePrimaryStorageCapacityReply,
)
from zstackpy.services.vm.messages import VmErr, VmState
from zstackpy.services.volume.base import volume_queue
from zstackpy.services.volume.extensions import TakenSnapshot
from zstackpy.services.volume.messages import VolumeErr, VolumeStatus
from zstackpy.services.volume.models import VolumeSnapshotVO, VolumeVO
from zstackpy.services.volume.snapshot_messages import (
    APICreateVolumeSnapshotMsg,
    APIDeleteVolumeSnapshotMsg,
    APIRevertVolumeFromSnapshotMsg,
    APIUpdateVolumeSnapshotMsg,
    VolumeSnapshotActionMsg,
    VolumeSnapshotEvent,
    VolumeSnapshotInventory,
)
from zstackpy.services.volume.snapshot_tree import SnapshotTree

TAKE_SNAPSHOT_PATH = "/vm/volume/takesnapshot"
# The VM states in which the VM's process holds the volume open: snapshots go live.
_LIVE = (VmState.RUNNING.value, VmState.PAUSED.value)
# The states in which nothing holds it.
_OFFLINE = (VmState.STOPPED.value, VmState.CREATED.value, VmState.DESTROYED.value)


class VolumeSnapshotService(SnapshotTree):
    # ----- create -----------------------------------------------------------------------

    @handles(APICreateVolumeSnapshotMsg)
    async def create(self, msg: APICreateVolumeSnapshotMsg) -> VolumeSnapshotEvent:
        return await self.ctx.queues.run(volume_queue(msg.volume_uuid), self._create, msg)

    async def _create(self, msg: APICreateVolumeSnapshotMsg) -> VolumeSnapshotEvent:
        uuid, auth = msg.resource_uuid, msg.require_auth()
        assert uuid is not None  # the portal gives every create its UUID
        async with self.ctx.db.session() as session:
            await self.refuse_duplicate(session, uuid)
            volume = await session.get(VolumeVO, msg.volume_uuid)
            if volume is None or not await may_use(session, msg.volume_uuid, auth):
                raise ZError(
                    SysErr.RESOURCE_NOT_FOUND,
                    f"no volume with uuid {msg.volume_uuid}",
                    uuid=msg.volume_uuid,
                )
            latest = await session.scalar(
                select(VolumeSnapshotVO).where(
                    VolumeSnapshotVO.volume_uuid == volume.uuid, VolumeSnapshotVO.latest.is_(True)
                )
            )
        if volume.status != VolumeStatus.READY or volume.install_path is None:
            raise ZError(
                VolumeErr.WRONG_STATE,
                f"volume {volume.name} ({volume.uuid}) is {volume.status}: only a Ready volume "
                "has a file to snapshot",
                uuid=volume.uuid,
                status=volume.status,
            )
        assert volume.primary_storage_uuid is not None  # Ready
        live_host = await self._live_host(volume)
        # The most a snapshot can hold; what it does not use comes back below.
        await self.ctx.bus.request(
            AllocatePrimaryStorageCapacityMsg(
                primary_storage_uuid=volume.primary_storage_uuid,
                host_uuid=volume.host_uuid,
                size=volume.size,
            ),
            AllocatePrimaryStorageCapacityReply,
        )
        new_path = f"{posixpath.dirname(volume.install_path)}/{new_uuid()}.qcow2"
        try:
            taken = await self._take(volume, volume.install_path, new_path, live_host)
        except BaseException:
            await self.give_back(volume.primary_storage_uuid, volume.host_uuid, volume.size)
            raise
        size = min(taken.size, volume.size)
        await self.give_back(volume.primary_storage_uuid, volume.host_uuid, volume.size - size)
        async with self.ctx.db.session() as session, session.begin():
            if latest is not None:
                await session.execute(
                    update(VolumeSnapshotVO)
                    .where(VolumeSnapshotVO.uuid == latest.uuid)
                    .values(latest=False)
                )
            session.add(
                VolumeSnapshotVO(
                    uuid=uuid,
                    name=msg.name,
                    description=msg.description,
                    type="Hypervisor" if live_host else "Storage",
                    volume_uuid=volume.uuid,
                    primary_storage_uuid=volume.primary_storage_uuid,
                    host_uuid=volume.host_uuid,
                    primary_storage_install_path=taken.snapshot_path,
                    volume_type=volume.type,
                    format=volume.format,
                    size=size,
                    tree_uuid=latest.tree_uuid if latest else new_uuid(),
                    parent_uuid=latest.uuid if latest else None,
                    distance=latest.distance + 1 if latest else 0,
                    latest=True,
                    state="Enabled",
                    status="Ready",
                )
            )
            await session.execute(
                update(VolumeVO)
                .where(VolumeVO.uuid == volume.uuid)
                .values(install_path=taken.new_volume_path)
            )
            add_resource(
                session, uuid=uuid, resource_type=self.resource_type, name=msg.name, auth=auth
            )
        inventory = await self.answer(uuid, "created", auth)
        return VolumeSnapshotEvent(inventory=VolumeSnapshotInventory.model_validate(inventory))

    async def _live_host(self, volume: VolumeVO) -> str | None:
        """The host of the VM that holds the volume open, or None when nothing does."""
        placement = await self.placement(volume)
        if placement is None or placement.state in _OFFLINE:
            return None
        if placement.state in _LIVE and placement.host_uuid is not None:
            return placement.host_uuid
        raise ZError(
            VmErr.WRONG_STATE,
            f"VM {volume.vm_instance_uuid} is {placement.state}: snapshot its volume when it "
            "is Running, Paused or Stopped",
            vmInstanceUuid=volume.vm_instance_uuid,
            state=placement.state,
        )

    async def _take(
        self, volume: VolumeVO, current: str, new_path: str, live_host: str | None
    ) -> TakenSnapshot:
        if live_host is None:
            row, backend, call, _ = await self.on_storage(volume)
            return await backend.take_snapshot(row.storage, volume.uuid, current, new_path, call)
        reply = await self.ctx.bus.request(
            HostAgentCallMsg(
                host_uuid=live_host,
                path=TAKE_SNAPSHOT_PATH,
                command={
                    "vmUuid": volume.vm_instance_uuid,
                    "volumeUuid": volume.uuid,
                    "volume": {
                        "volumeUuid": volume.uuid,
                        "installPath": current,
                        "deviceId": volume.device_id,
                        "format": volume.format,
                    },
                    "volumeInstallPath": current,
                    "installPath": new_path,
                    "newVolumeInstallPath": new_path,
                    "fullSnapshot": False,
                    "online": True,
                },
            ),
            HostAgentCallReply,
        )
        result = reply.result
        size = result.get("size")
        return TakenSnapshot(
            snapshot_path=str(result.get("snapshotInstallPath") or current),
            new_volume_path=str(result.get("newVolumeInstallPath") or new_path),
            size=size if isinstance(size, int) and size >= 0 else 0,
        )

    # ----- update -----------------------------------------------------------------------

    @handles(APIUpdateVolumeSnapshotMsg)
    async def update_api(self, msg: APIUpdateVolumeSnapshotMsg) -> VolumeSnapshotEvent:
        changes = msg.model_dump(include={"name", "description"}, exclude_none=True, by_alias=False)
        await self.update_fields(msg.uuid, changes)
        inventory = await self.answer(msg.uuid, "updated", msg.require_auth())
        return VolumeSnapshotEvent(inventory=VolumeSnapshotInventory.model_validate(inventory))

    # ----- revert and delete: forwarded to the volume's queue ---------------------------

    @handles(APIRevertVolumeFromSnapshotMsg)
    async def revert_api(self, msg: APIRevertVolumeFromSnapshotMsg) -> VolumeSnapshotEvent:
        await self._forward(msg.uuid, "revert")
        return VolumeSnapshotEvent()

    @handles(APIDeleteVolumeSnapshotMsg)
    async def delete_api(self, msg: APIDeleteVolumeSnapshotMsg) -> VolumeSnapshotEvent:
        await self._forward(msg.uuid, "delete")
        return VolumeSnapshotEvent()

    async def _forward(self, uuid: str, action: Literal["revert", "delete"]) -> None:
        async with self.ctx.db.session() as session:
            snapshot = await self.require(session, uuid)
        await self.ctx.bus.request(
            VolumeSnapshotActionMsg(
                volume_uuid=snapshot.volume_uuid, snapshot_uuid=uuid, action=action
            ),
            Reply,
        )

    @handles(VolumeSnapshotActionMsg)
    async def act(self, msg: VolumeSnapshotActionMsg) -> Reply:
        do = self.revert if msg.action == "revert" else self.delete_tree
        await self.ctx.queues.run(volume_queue(msg.volume_uuid), do, msg.snapshot_uuid)
        return Reply()
