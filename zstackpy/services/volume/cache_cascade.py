"""Image cache entries belong to their primary storage and (local storage) their host:
deleting either forgets them. Files and capacity books go with the storage or host."""

from __future__ import annotations

from sqlalchemy import select

from zstackpy.core.cascade import CascadeChildren, DeleteMode
from zstackpy.core.service import Service
from zstackpy.services.volume.cache import forget_caches
from zstackpy.services.volume.models import ImageCacheVO

IMAGE_CACHE_TYPE = "ImageCacheVO"


class ImageCacheCascade(Service):
    """A CascadeParticipant; no messages of its own."""

    name = "imageCache"

    async def cascade_children(
        self, parent_type: str, parent_uuids: tuple[str, ...]
    ) -> CascadeChildren | None:
        if parent_type == "PrimaryStorageVO":
            where = ImageCacheVO.primary_storage_uuid.in_(parent_uuids)
        elif parent_type == "HostVO":
            where = ImageCacheVO.host_uuid.in_(parent_uuids)
        else:
            return None
        async with self.ctx.db.session() as session:
            ids = (await session.execute(select(ImageCacheVO.id).where(where))).scalars()
            return CascadeChildren(IMAGE_CACHE_TYPE, tuple(str(i) for i in ids))

    async def cascade_check(self, children: CascadeChildren) -> None:
        """Forgetting a cache never refuses."""

    async def cascade_delete(self, children: CascadeChildren, mode: DeleteMode) -> None:
        await forget_caches(self.ctx, [int(i) for i in children.uuids])
