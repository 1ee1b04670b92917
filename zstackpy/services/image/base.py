"""What every part of the image service shares: the row with its copies, the inventory,
change events, and removing an image for good."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from zstackpy.api.messages import AuthContext
from zstackpy.api.ownership import remove_resources
from zstackpy.core.errors import SysErr, ZError
from zstackpy.core.workqueue import QueueKey
from zstackpy.services.image.messages import IMAGE_SERVICE, IMAGE_TYPE, ImageEvent, ImageInventory
from zstackpy.services.image.models import ImageBackupStorageRefVO, ImageVO
from zstackpy.services.resource_service import ResourceService


def image_queue(uuid: str) -> QueueKey:
    """Every change of one image runs in this queue, on the image's ring owner."""
    return QueueKey("image", uuid)


class ImageBase(ResourceService):
    name = IMAGE_SERVICE
    model = ImageVO
    inventory = ImageInventory
    resource_type = IMAGE_TYPE
    noun = "image"

    async def require(self, session: AsyncSession, uuid: str) -> Any:
        # The inventory lists backupStorageRefs: load them with the row, in one query.
        row = await session.get(ImageVO, uuid, options=[selectinload(ImageVO.backup_storage_refs)])
        if row is None:
            raise ZError(SysErr.RESOURCE_NOT_FOUND, f"no image with uuid {uuid}", uuid=uuid)
        return row

    async def load(self, uuid: str) -> ImageInventory:
        async with self.ctx.db.read_session() as session:
            row = await self.require(session, uuid)
        return ImageInventory.model_validate(row, from_attributes=True)

    async def event(self, uuid: str, change: Any, auth: AuthContext) -> ImageEvent:
        """The API answer after a change: the inventory, announced to subscribers."""
        inventory = await self.answer(uuid, change, auth)
        return ImageEvent(inventory=ImageInventory.model_validate(inventory))

    async def remove(self, uuids: list[str], auth: AuthContext | None) -> None:
        """Images and whatever copies they still list go (callers deleted the files)."""
        async with self.ctx.db.session() as session, session.begin():
            await session.execute(
                delete(ImageBackupStorageRefVO).where(ImageBackupStorageRefVO.image_uuid.in_(uuids))
            )
            await session.execute(delete(ImageVO).where(ImageVO.uuid.in_(uuids)))
            await remove_resources(session, uuids)
        for uuid in uuids:
            await self._publish(uuid, "deleted", auth, None)
