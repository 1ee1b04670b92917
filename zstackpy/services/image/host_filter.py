"""The host allocator's image filter: a VM made from an image can run only on hosts whose
zone has a Connected backup storage holding that image Ready (ZStack's
ImageBackupStorageAllocatorFlow)."""

from __future__ import annotations

from sqlalchemy import select

from zstackpy.core.errors import ZError
from zstackpy.core.service import Service
from zstackpy.services.backup_storage.messages import ListBackupStorageMsg, ListBackupStorageReply
from zstackpy.services.host.messages import AllocateHostMsg, HostCandidate, HostErr
from zstackpy.services.image.messages import ImageStatus
from zstackpy.services.image.models import ImageBackupStorageRefVO, ImageVO


class ImageHostFilterService(Service):
    """A HostAllocatorFilter (services.host.extensions); no messages of its own."""

    name = "imageHostFilter"

    async def filter_hosts(
        self, request: AllocateHostMsg, candidates: list[HostCandidate]
    ) -> list[HostCandidate]:
        if request.image_uuid is None:
            return candidates
        image_uuid = request.image_uuid
        if request.image_ready_on is not None:
            status: str | None = ImageStatus.READY
            held_by = list(request.image_ready_on)
        else:
            status, held_by = await self._ready_on(image_uuid)
        if status != ImageStatus.READY or not held_by:
            raise ZError(
                HostErr.NO_AVAILABLE_HOST,
                f"image {image_uuid} is {status or 'missing'}: no backup storage holds it Ready",
                filter="image",
                imageUuid=image_uuid,
                imageStatus=status,
            )
        reply = await self.ctx.bus.request(
            ListBackupStorageMsg(uuids=held_by, connected_only=True), ListBackupStorageReply
        )
        zones = {zone for bs in reply.backup_storages for zone in bs.attached_zone_uuids}
        kept = [c for c in candidates if c.zone_uuid in zones]
        if not kept:
            raise ZError(
                HostErr.NO_AVAILABLE_HOST,
                f"no candidate host is in a zone where a Connected backup storage holds "
                f"image {image_uuid}",
                filter="image",
                imageUuid=image_uuid,
                backupStorageUuids=held_by,
                zoneUuids=sorted(zones),
            )
        return kept

    async def _ready_on(self, image_uuid: str) -> tuple[str | None, list[str]]:
        """The image's status and the backup storage holding it Ready."""
        async with self.ctx.db.session() as session:
            status = await session.scalar(select(ImageVO.status).where(ImageVO.uuid == image_uuid))
            held_by = (
                await session.execute(
                    select(ImageBackupStorageRefVO.backup_storage_uuid).where(
                        ImageBackupStorageRefVO.image_uuid == image_uuid,
                        ImageBackupStorageRefVO.status == ImageStatus.READY.value,
                    )
                )
            ).scalars()
            return status, list(held_by)
