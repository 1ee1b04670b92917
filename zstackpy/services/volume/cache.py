"""The image cache on primary storage: the first root volume of an image on a storage (on
a host, for local storage) copies the image from backup storage; later ones clone the
cached copy.

Every change of one cache entry runs in its queue (``cache_queue``), so two volumes of one
image never download it twice, and dropping an entry cannot race a volume about to clone
it: a root volume's row exists (status Creating) before it asks for the cache, and an
entry is dropped only while no volume row of its image is on its storage (and host).
"""

from __future__ import annotations

import logging
from functools import partial

from sqlalchemy import ColumnElement, delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from zstackpy.core.coalesce import CoalescedReads, owned_by
from zstackpy.core.context import NodeContext
from zstackpy.core.db import Database
from zstackpy.core.errors import ZError
from zstackpy.core.workqueue import QueueKey
from zstackpy.services.image.messages import ImageInventory
from zstackpy.services.primary_storage.extensions import AgentCall
from zstackpy.services.primary_storage.messages import (
    AllocatePrimaryStorageCapacityMsg,
    AllocatePrimaryStorageCapacityReply,
    ReturnPrimaryStorageCapacityMsg,
)
from zstackpy.services.volume.access import StorageRow, image_source
from zstackpy.services.volume.extensions import VolumeStorageBackend
from zstackpy.services.volume.models import ImageCacheVO, VolumeVO

log = logging.getLogger(__name__)


def cache_queue(primary_storage_uuid: str, host_uuid: str | None, image_uuid: str) -> QueueKey:
    return QueueKey("image-cache", f"{primary_storage_uuid}/{host_uuid or '-'}/{image_uuid}")


def _where(ps_uuid: str, host_uuid: str | None, image_uuid: str) -> list[ColumnElement[bool]]:
    host = ImageCacheVO.host_uuid
    return [
        ImageCacheVO.primary_storage_uuid == ps_uuid,
        ImageCacheVO.image_uuid == image_uuid,
        host.is_(None) if host_uuid is None else host == host_uuid,
    ]


async def ensure_cache(
    ctx: NodeContext,
    row: StorageRow,
    backend: VolumeStorageBackend,
    host_uuid: str | None,
    image: ImageInventory,
    call: AgentCall,
) -> tuple[str, bool]:
    """The cached copy's path, and whether this call made it. A new copy reserves the
    image's size on the storage (and host); a failed copy leaves nothing."""
    # Most calls find the copy there: they need not wait in the entry's queue behind each
    # other. Safe outside the queue: this volume's row exists already, and an entry is
    # dropped only while no such row exists, so a copy seen here stays.
    cached = await _cached_path(ctx, row.storage.primary_storage_uuid, host_uuid, image.uuid)
    if cached is not None:
        return cached, False
    key = cache_queue(row.storage.primary_storage_uuid, host_uuid, image.uuid)
    return await ctx.queues.run(key, _ensure, ctx, row, backend, host_uuid, image, call)


CacheKey = tuple[str, str | None, str]  # storage, host (local storage) or None, image


async def _cached_path(
    ctx: NodeContext, ps_uuid: str, host_uuid: str | None, image_uuid: str
) -> str | None:
    # One per node: a burst's concurrent reads of one key share one read (core.coalesce).
    reads: CoalescedReads[CacheKey, str | None] = owned_by(
        ctx.db, "volume.cache-path", lambda: CoalescedReads(partial(_read_path, ctx.db))
    )
    return await reads.read((ps_uuid, host_uuid, image_uuid))


async def _read_path(db: Database, key: CacheKey) -> str | None:
    ps_uuid, host_uuid, image_uuid = key
    found = select(ImageCacheVO.install_url).where(*_where(ps_uuid, host_uuid, image_uuid))

    async def read(session: AsyncSession) -> str | None:
        return await session.scalar(found)

    return await db.read(read)


async def _ensure(
    ctx: NodeContext,
    row: StorageRow,
    backend: VolumeStorageBackend,
    host_uuid: str | None,
    image: ImageInventory,
    call: AgentCall,
) -> tuple[str, bool]:
    ps_uuid = row.storage.primary_storage_uuid
    cached = await _cached_path(ctx, ps_uuid, host_uuid, image.uuid)
    if cached is not None:
        return cached, False
    source = await image_source(ctx, image, row.zone_uuid)
    size = max(image.actual_size, 0)
    await ctx.bus.request(
        AllocatePrimaryStorageCapacityMsg(
            primary_storage_uuid=ps_uuid, host_uuid=host_uuid, size=size
        ),
        AllocatePrimaryStorageCapacityReply,
    )
    path = backend.cache_path(row.storage, image.uuid)
    try:
        await backend.download_to_cache(row.storage, source, path, call)
        async with ctx.db.session() as session, session.begin():
            session.add(
                ImageCacheVO(
                    primary_storage_uuid=ps_uuid,
                    host_uuid=host_uuid,
                    image_uuid=image.uuid,
                    install_url=path,
                    size=size,
                    md5_sum=image.md5_sum,
                )
            )
    except BaseException:
        await _best_effort_delete(backend, row, path, call)
        await _give_back(ctx, ps_uuid, host_uuid, size)
        raise
    return path, True


async def drop_cache_if_unused(
    ctx: NodeContext,
    row: StorageRow,
    backend: VolumeStorageBackend,
    host_uuid: str | None,
    image_uuid: str,
    call: AgentCall,
) -> None:
    """Undo a cache entry a failed creation made, unless a volume row of its image is on
    its storage (and host) by now: that volume may clone it."""
    key = cache_queue(row.storage.primary_storage_uuid, host_uuid, image_uuid)
    await ctx.queues.run(key, _drop, ctx, row, backend, host_uuid, image_uuid, call)


async def _drop(
    ctx: NodeContext,
    row: StorageRow,
    backend: VolumeStorageBackend,
    host_uuid: str | None,
    image_uuid: str,
    call: AgentCall,
) -> None:
    ps_uuid = row.storage.primary_storage_uuid
    async with ctx.db.session() as session, session.begin():
        users_q = select(func.count()).where(
            VolumeVO.primary_storage_uuid == ps_uuid,
            VolumeVO.root_image_uuid == image_uuid,
            VolumeVO.host_uuid.is_(None) if host_uuid is None else VolumeVO.host_uuid == host_uuid,
        )
        if await session.scalar(users_q):
            return
        entry = (
            await session.execute(
                select(ImageCacheVO).where(*_where(ps_uuid, host_uuid, image_uuid))
            )
        ).scalar_one_or_none()
        if entry is None:
            return
        path, size = entry.install_url, entry.size
        await session.execute(delete(ImageCacheVO).where(ImageCacheVO.id == entry.id))
    await _best_effort_delete(backend, row, path, call)
    await _give_back(ctx, ps_uuid, host_uuid, size)


async def forget_caches(ctx: NodeContext, ids: list[int]) -> None:
    """Drop cache rows whose storage or host is being deleted; files and books go with
    the storage or host, so only the rows are removed."""
    if ids:
        async with ctx.db.session() as session, session.begin():
            await session.execute(delete(ImageCacheVO).where(ImageCacheVO.id.in_(ids)))


async def _best_effort_delete(
    backend: VolumeStorageBackend, row: StorageRow, path: str, call: AgentCall
) -> None:
    try:
        await backend.delete_file(row.storage, path, call)
    except ZError as exc:
        # The file may never have been written; a real leftover is the agent's garbage.
        log.warning("could not delete %s on primary storage %s: %s", path, row.storage, exc)


async def _give_back(ctx: NodeContext, ps_uuid: str, host_uuid: str | None, size: int) -> None:
    reply = await ctx.bus.call(
        ReturnPrimaryStorageCapacityMsg(
            primary_storage_uuid=ps_uuid, host_uuid=host_uuid, size=size
        )
    )
    if not reply.success:
        log.warning(
            "could not return %d bytes to primary storage %s: %s", size, ps_uuid, reply.error
        )
