"""Revert and delete of volume snapshots, in the volume's queue, and snapshots going
with their volume (CascadeParticipant of VolumeVO).

Snapshots of a volume form a tree; the volume's file rests on the ``latest`` one and its
ancestors. Reverting makes a new file on the chosen snapshot (the VM Stopped, or the
volume detached). Deleting a snapshot deletes it with its descendants, as ZStack does;
when the volume's file rests on one of them, the snapshot is folded into the file first
(offline only: a running VM's live merge is not done yet, so it is refused).
"""

from __future__ import annotations

import logging
import posixpath

from sqlalchemy import select, update

from zstackpy.core.cascade import CascadeChildren, DeleteMode
from zstackpy.core.errors import ZError
from zstackpy.core.ids import new_uuid
from zstackpy.services.vm.messages import VmState
from zstackpy.services.volume.messages import VOLUME_RESOURCE_TYPE, VolumeErr
from zstackpy.services.volume.models import VolumeSnapshotVO, VolumeVO
from zstackpy.services.volume.snapshot_base import SnapshotBase

log = logging.getLogger(__name__)


class SnapshotTree(SnapshotBase):
    async def revert(self, uuid: str) -> None:
        """Bring the volume back to snapshot ``uuid``, in the volume's queue; VOLUME.1006
        while its VM is not Stopped."""
        snapshot, volume, _ = await self.load_family(uuid)
        placement = await self.placement(volume)
        if placement is not None and placement.state != VmState.STOPPED:
            raise ZError(
                VolumeErr.VM_NOT_STOPPED,
                f"volume {volume.name} ({volume.uuid}) is used by VM {volume.vm_instance_uuid}, "
                f"which is {placement.state}: stop it before reverting",
                uuid=volume.uuid,
                vmInstanceUuid=volume.vm_instance_uuid,
                state=placement.state,
            )
        row, backend, call, old_path = await self.on_storage(volume)
        wanted = f"{posixpath.dirname(old_path)}/{new_uuid()}.qcow2"
        new_path = await backend.revert(
            row.storage, snapshot.primary_storage_install_path, wanted, call
        )
        async with self.ctx.db.session() as session, session.begin():
            await session.execute(
                update(VolumeVO).where(VolumeVO.uuid == volume.uuid).values(install_path=new_path)
            )
            await session.execute(
                update(VolumeSnapshotVO)
                .where(VolumeSnapshotVO.volume_uuid == volume.uuid)
                .values(latest=VolumeSnapshotVO.uuid == snapshot.uuid)
            )
        # The file the volume left holds data no snapshot needs any more.
        try:
            await backend.delete_file(row.storage, old_path, call)
        except ZError as exc:
            log.warning("volume %s: %s stays behind: %s", volume.uuid, old_path, exc)
        await self.announce(snapshot.uuid)

    async def delete_tree(self, uuid: str) -> None:
        """Delete snapshot ``uuid`` and its descendants, in the volume's queue; VOLUME.1006
        when the volume rests on them and its VM is not Stopped."""
        snapshot, volume, family = await self.load_family(uuid)
        doomed = _descendants(snapshot.uuid, family)
        chain = _ancestors(next((s for s in family if s.latest), None), family)
        if doomed & chain:
            # The volume's file rests on a snapshot that goes: fold it into the file first.
            placement = await self.placement(volume)
            if placement is not None and placement.state != VmState.STOPPED:
                raise ZError(
                    VolumeErr.VM_NOT_STOPPED,
                    f"volume {volume.name} ({volume.uuid}) rests on snapshot {snapshot.uuid} "
                    f"and its VM is {placement.state}: stop the VM to delete the snapshot",
                    uuid=volume.uuid,
                    snapshotUuid=snapshot.uuid,
                    state=placement.state,
                )
            row, backend, call, path = await self.on_storage(volume)
            await backend.merge(row.storage, snapshot.primary_storage_install_path, path, call)
        gone = [s for s in family if s.uuid in doomed]
        await self.remove_snapshots(gone)
        if doomed & chain and snapshot.parent_uuid is not None:
            async with self.ctx.db.session() as session, session.begin():
                await session.execute(
                    update(VolumeSnapshotVO)
                    .where(VolumeSnapshotVO.uuid == snapshot.parent_uuid)
                    .values(latest=True)
                )

    # ----- CascadeParticipant: snapshots go with their volume ---------------------------

    async def cascade_children(
        self, parent_type: str, parent_uuids: tuple[str, ...]
    ) -> CascadeChildren | None:
        if parent_type != VOLUME_RESOURCE_TYPE:
            return None
        async with self.ctx.db.session() as session:
            rows = await session.execute(
                select(VolumeSnapshotVO.uuid).where(VolumeSnapshotVO.volume_uuid.in_(parent_uuids))
            )
            return CascadeChildren(self.resource_type, tuple(rows.scalars()))

    async def cascade_check(self, children: CascadeChildren) -> None:
        """Snapshots never refuse to go with their volume."""

    async def cascade_delete(self, children: CascadeChildren, mode: DeleteMode) -> None:
        # Runs in the volume's queue (its expunge), so it must not queue there again.
        async with self.ctx.db.session() as session:
            snapshots = list(
                (
                    await session.execute(
                        select(VolumeSnapshotVO).where(VolumeSnapshotVO.uuid.in_(children.uuids))
                    )
                ).scalars()
            )
        await self.remove_snapshots(snapshots)


def _descendants(uuid: str, family: list[VolumeSnapshotVO]) -> set[str]:
    """``uuid`` and every snapshot below it."""
    found, frontier = {uuid}, [uuid]
    while frontier:
        parent = frontier.pop()
        for s in family:
            if s.parent_uuid == parent and s.uuid not in found:
                found.add(s.uuid)
                frontier.append(s.uuid)
    return found


def _ancestors(snapshot: VolumeSnapshotVO | None, family: list[VolumeSnapshotVO]) -> set[str]:
    """``snapshot`` and every snapshot above it: the files the volume's file rests on."""
    by_uuid = {s.uuid: s for s in family}
    found: set[str] = set()
    while snapshot is not None and snapshot.uuid not in found:
        found.add(snapshot.uuid)
        snapshot = by_uuid.get(snapshot.parent_uuid or "")
    return found
