"""What the parts of the volume snapshot service share: the volume's VM as the VM
service sees it, the volume's storage, loading a snapshot's family, removing snapshots
(files, capacity, rows) and announcing changes."""

from __future__ import annotations

import logging

from sqlalchemy import delete, select

from zstackpy.api.ownership import remove_resources
from zstackpy.core.errors import SysErr, ZError
from zstackpy.services.primary_storage.extensions import AgentCall
from zstackpy.services.primary_storage.messages import ReturnPrimaryStorageCapacityMsg
from zstackpy.services.resource_service import ResourceService
from zstackpy.services.vm.messages import GetVmPlacementMsg, GetVmPlacementReply
from zstackpy.services.volume.access import (
    StorageRow,
    agent_call,
    backend_for,
    command_host,
    load_storage,
)
from zstackpy.services.volume.extensions import VolumeStorageBackend
from zstackpy.services.volume.messages import VolumeErr
from zstackpy.services.volume.models import VolumeSnapshotVO, VolumeVO
from zstackpy.services.volume.snapshot_messages import (
    VOLUME_SNAPSHOT_RESOURCE_TYPE,
    VOLUME_SNAPSHOT_SERVICE,
    VolumeSnapshotInventory,
)

log = logging.getLogger(__name__)


class SnapshotBase(ResourceService):
    name = VOLUME_SNAPSHOT_SERVICE
    model = VolumeSnapshotVO
    inventory = VolumeSnapshotInventory
    resource_type = VOLUME_SNAPSHOT_RESOURCE_TYPE
    noun = "volume snapshot"

    async def placement(self, volume: VolumeVO) -> GetVmPlacementReply | None:
        """The volume's VM as the VM service sees it; None when detached or the VM is gone."""
        if volume.vm_instance_uuid is None:
            return None
        reply = await self.ctx.bus.call(GetVmPlacementMsg(vm_instance_uuid=volume.vm_instance_uuid))
        if (
            not reply.success
            and reply.error is not None
            and reply.error.code == SysErr.RESOURCE_NOT_FOUND
        ):
            return None
        reply.raise_if_error()
        assert isinstance(reply, GetVmPlacementReply)
        return reply

    async def on_storage(
        self, volume: VolumeVO
    ) -> tuple[StorageRow, VolumeStorageBackend, AgentCall, str]:
        """The volume's storage, its backend, a call to a host reaching it, its file."""
        if volume.primary_storage_uuid is None or volume.install_path is None:
            raise ZError(
                VolumeErr.WRONG_STATE,
                f"volume {volume.name} ({volume.uuid}) is {volume.status}: it has no file",
                uuid=volume.uuid,
                status=volume.status,
            )
        row = await load_storage(self.ctx, volume.primary_storage_uuid)
        backend = backend_for(self.ctx, row.storage.storage_type)
        call = agent_call(self.ctx, await command_host(self.ctx, row, volume.host_uuid))
        return row, backend, call, volume.install_path

    async def load_family(
        self, uuid: str
    ) -> tuple[VolumeSnapshotVO, VolumeVO, list[VolumeSnapshotVO]]:
        """The snapshot, its volume and every snapshot of that volume."""
        async with self.ctx.db.session() as session:
            snapshot: VolumeSnapshotVO = await self.require(session, uuid)
            volume = await session.get(VolumeVO, snapshot.volume_uuid)
            family = list(
                (
                    await session.execute(
                        select(VolumeSnapshotVO).where(
                            VolumeSnapshotVO.volume_uuid == snapshot.volume_uuid
                        )
                    )
                ).scalars()
            )
        if volume is None:
            raise ZError(
                SysErr.RESOURCE_NOT_FOUND,
                f"the volume of snapshot {uuid} is gone",
                uuid=snapshot.volume_uuid,
            )
        return snapshot, volume, family

    async def remove_snapshots(self, snapshots: list[VolumeSnapshotVO]) -> None:
        """Delete snapshot files (best effort: a file an agent cannot delete is left, as
        ZStack leaves it to its garbage collector), give their capacity back, drop rows."""
        for snapshot in snapshots:
            try:
                row = await load_storage(self.ctx, snapshot.primary_storage_uuid)
                backend = backend_for(self.ctx, row.storage.storage_type)
                host = await command_host(self.ctx, row, snapshot.host_uuid)
                await backend.delete_file(
                    row.storage, snapshot.primary_storage_install_path, agent_call(self.ctx, host)
                )
            except ZError as exc:
                log.warning("snapshot %s: its file stays behind: %s", snapshot.uuid, exc)
            await self.give_back(snapshot.primary_storage_uuid, snapshot.host_uuid, snapshot.size)
        uuids = [s.uuid for s in snapshots]
        async with self.ctx.db.session() as session, session.begin():
            await session.execute(delete(VolumeSnapshotVO).where(VolumeSnapshotVO.uuid.in_(uuids)))
            await remove_resources(session, uuids)
        for uuid in uuids:
            await self._publish(uuid, "deleted", None, None)

    async def give_back(self, ps_uuid: str, host_uuid: str | None, size: int) -> None:
        if size <= 0:
            return
        reply = await self.ctx.bus.call(
            ReturnPrimaryStorageCapacityMsg(
                primary_storage_uuid=ps_uuid, host_uuid=host_uuid, size=size
            )
        )
        if not reply.success:
            log.warning(
                "%d bytes not returned to primary storage %s: %s", size, ps_uuid, reply.error
            )

    async def announce(self, uuid: str) -> None:
        async with self.ctx.db.session() as session:
            row = await self.require(session, uuid)
        inventory = VolumeSnapshotInventory.model_validate(row, from_attributes=True)
        await self._publish(uuid, "updated", None, inventory.model_dump(mode="json", by_alias=True))
