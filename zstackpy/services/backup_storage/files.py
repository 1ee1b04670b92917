"""Image files on backup storage, for the image service: download (with the capacity
reservation), delete (with the capacity given back), and the storage list it chooses from.

A download takes minutes, so it runs outside the storage's queue: the queue is held only
to check the storage is usable before, and to reserve the file's actual size after. A
file that does not fit is deleted again, so capacity never goes negative.
"""

from __future__ import annotations

import logging
from functools import cached_property

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from zstackpy.core.bus.message import Reply
from zstackpy.core.coalesce import CoalescedReads
from zstackpy.core.errors import ZError
from zstackpy.core.service import handles
from zstackpy.services.backup_storage.base import BackupStorageBase
from zstackpy.services.backup_storage.extensions import (
    BackupStorageBackend,
    BackupStorageSpec,
    ImageDownload,
)
from zstackpy.services.backup_storage.messages import (
    BackupStorageErr,
    BackupStorageState,
    BackupStorageStatus,
    BackupStorageSummary,
    DeleteImageFromBackupStorageMsg,
    DownloadImageToBackupStorageMsg,
    DownloadImageToBackupStorageReply,
    ListBackupStorageMsg,
    ListBackupStorageReply,
    backup_storage_queue,
)
from zstackpy.services.backup_storage.models import BackupStorageVO, BackupStorageZoneRefVO

log = logging.getLogger(__name__)


class ImageFiles(BackupStorageBase):
    """Handlers of the backup storage service about image files (a part of that service)."""

    @cached_property
    def _summary_reads(
        self,
    ) -> CoalescedReads[tuple[tuple[str, ...], tuple[str, ...]], list[BackupStorageSummary]]:
        return CoalescedReads(lambda key: self.summaries(list(key[0]), list(key[1])))

    @handles(ListBackupStorageMsg)
    async def list_backup_storage(self, msg: ListBackupStorageMsg) -> ListBackupStorageReply:
        # A burst of VM creations asks for the same storage: one read serves them.
        found = await self._summary_reads.read((tuple(msg.uuids), tuple(msg.zone_uuids)))
        if msg.connected_only:
            found = [s for s in found if s.status == BackupStorageStatus.CONNECTED]
        if msg.enabled_only:
            found = [s for s in found if s.state == BackupStorageState.ENABLED]
        return ListBackupStorageReply(backup_storages=found)

    async def summaries(
        self, uuids: list[str], zone_uuids: list[str]
    ) -> list[BackupStorageSummary]:
        """Storage by uuid and/or attached zone (both empty: all), with their zones."""
        stmt = select(BackupStorageVO).options(selectinload(BackupStorageVO.zone_refs))
        if uuids:
            stmt = stmt.where(BackupStorageVO.uuid.in_(uuids))
        if zone_uuids:
            attached = select(BackupStorageZoneRefVO.backup_storage_uuid).where(
                BackupStorageZoneRefVO.zone_uuid.in_(zone_uuids)
            )
            stmt = stmt.where(BackupStorageVO.uuid.in_(attached))
        async with self.ctx.db.read_session() as session:
            rows = (await session.execute(stmt.order_by(BackupStorageVO.uuid))).scalars().all()
        return [BackupStorageSummary.model_validate(r, from_attributes=True) for r in rows]

    @handles(DownloadImageToBackupStorageMsg)
    async def download_image(
        self, msg: DownloadImageToBackupStorageMsg
    ) -> DownloadImageToBackupStorageReply:
        key = backup_storage_queue(msg.backup_storage_uuid)
        spec = await self.ctx.queues.run(key, self._usable_spec, msg.backup_storage_uuid)
        backend = self.backend_for(spec.type)
        request = ImageDownload(msg.image_uuid, msg.url, msg.format, msg.timeout)
        image = await backend.download_image(spec, request)
        try:
            await self.ctx.queues.run(key, self._reserve, spec.uuid, image.actual_size)
        except ZError:
            # The file is there but must not stay: nobody would account for it.
            await self._delete_quietly(backend, spec, image.install_path)
            raise
        return DownloadImageToBackupStorageReply(
            install_path=image.install_path,
            size=image.size,
            actual_size=image.actual_size,
            md5_sum=image.md5_sum,
            format=image.format,
        )

    async def _usable_spec(self, uuid: str) -> BackupStorageSpec:
        return await self.spec(uuid, connected=True, enabled=True)

    async def _reserve(self, uuid: str, size: int) -> None:
        async with self.ctx.db.session() as session, session.begin():
            row = await self.require(session, uuid)
            if row.available_capacity < size:
                raise ZError(
                    BackupStorageErr.NOT_ENOUGH_CAPACITY,
                    f"backup storage {row.name} ({uuid}) has {row.available_capacity} bytes "
                    f"available, the image needs {size}",
                    backupStorageUuid=uuid,
                    availableCapacity=row.available_capacity,
                    requiredCapacity=size,
                )
            row.available_capacity -= size

    @handles(DeleteImageFromBackupStorageMsg)
    async def delete_image(self, msg: DeleteImageFromBackupStorageMsg) -> Reply:
        key = backup_storage_queue(msg.backup_storage_uuid)
        spec = await self.ctx.queues.run(key, self._connected_spec, msg.backup_storage_uuid)
        await self.backend_for(spec.type).delete_image(spec, msg.install_path)
        await self.ctx.queues.run(key, self._give_back, spec.uuid, msg.actual_size)
        return Reply()

    async def _connected_spec(self, uuid: str) -> BackupStorageSpec:
        return await self.spec(uuid, connected=True)

    async def _give_back(self, uuid: str, size: int) -> None:
        async with self.ctx.db.session() as session, session.begin():
            row = await self.require(session, uuid)
            row.available_capacity = min(row.total_capacity, row.available_capacity + size)

    async def _delete_quietly(
        self, backend: BackupStorageBackend, spec: BackupStorageSpec, install_path: str
    ) -> None:
        try:
            await backend.delete_image(spec, install_path)
        except ZError as exc:
            log.warning(
                "backup storage %s: cannot delete %s after a failed reservation: %s",
                spec.uuid,
                install_path,
                exc,
            )
