"""Image deletion, expunge and recovery, and forgetting the copies on a deleted backup
storage.

``image deletionPolicy`` decides what DeleteImage does with the chosen copies (all, or
those on the named backup storage): Direct deletes the files (their capacity comes back)
and the refs, and the image itself once no copy is left; Delay and Never only mark the
copies Deleted, and the image Deleted once every copy is, until ExpungeImage deletes them
for good or RecoverImage makes them Ready again. A file a Disconnected storage could not
delete under Direct is left behind (the storage's capacity is re-read at its next
connect), as ZStack leaves it to its garbage collector.
"""

from __future__ import annotations

import logging

from sqlalchemy import delete, func, select, update

from zstackpy.api.messages import AuthContext
from zstackpy.api.ownership import remove_resources
from zstackpy.core.bus.message import Reply
from zstackpy.core.cascade import CascadeChildren, CascadeParticipant, DeleteMode, cascade_delete
from zstackpy.core.errors import ErrorInfo, ZError
from zstackpy.core.service import handles
from zstackpy.services.backup_storage.messages import DeleteImageFromBackupStorageMsg
from zstackpy.services.image.base import ImageBase, image_queue
from zstackpy.services.image.configs import DELETION_POLICY, DIRECT
from zstackpy.services.image.messages import (
    APIDeleteImageMsg,
    APIExpungeImageMsg,
    APIRecoverImageMsg,
    ImageBackupStorageRefInventory,
    ImageErr,
    ImageEvent,
    ImageInventory,
    ImageStatus,
)
from zstackpy.services.image.models import ImageBackupStorageRefVO, ImageVO

log = logging.getLogger(__name__)

IMAGE_REF_TYPE = "ImageBackupStorageRefVO"
_BACKUP_STORAGE_TYPE = "BackupStorageVO"


class ImageDeletion(ImageBase):
    """Handlers of the image service about deletion (a part of that service)."""

    @handles(APIDeleteImageMsg)
    async def delete_api(self, msg: APIDeleteImageMsg) -> ImageEvent:
        return await self.ctx.queues.run(image_queue(msg.uuid), self._delete, msg)

    async def _delete(self, msg: APIDeleteImageMsg) -> ImageEvent:
        auth = msg.require_auth()
        image = await self.load(msg.uuid)
        targets = _chosen(image, msg.backup_storage_uuids)
        if self.ctx.configs.value(DELETION_POLICY) == DIRECT:
            for ref in targets:
                try:
                    await self._delete_file(image, ref.backup_storage_uuid, ref.install_path)
                except ZError as exc:
                    log.warning(
                        "image %s: its copy %s stays behind: %s", image.uuid, ref.install_path, exc
                    )
            return await self._forget(
                image, [r.backup_storage_uuid for r in targets], msg.delete_mode, auth
            )
        await self._mark(image.uuid, [r.backup_storage_uuid for r in targets], ImageStatus.DELETED)
        return await self.event(image.uuid, "updated", auth)

    @handles(APIExpungeImageMsg)
    async def expunge(self, msg: APIExpungeImageMsg) -> ImageEvent:
        return await self.ctx.queues.run(image_queue(msg.image_uuid), self._expunge, msg)

    async def _expunge(self, msg: APIExpungeImageMsg) -> ImageEvent:
        auth = msg.require_auth()
        image = await self.load(msg.image_uuid)
        targets = _deleted(image, msg.backup_storage_uuids)
        done: list[str] = []
        failures: dict[str, ErrorInfo] = {}
        for ref in targets:
            try:
                await self._delete_file(image, ref.backup_storage_uuid, ref.install_path)
            except ZError as exc:
                failures[ref.backup_storage_uuid] = exc.info()
            else:
                done.append(ref.backup_storage_uuid)
        event = await self._forget(image, done, "Permissive", auth)
        if failures:
            raise ZError(
                ImageErr.EXPUNGE_FAILED,
                f"image {image.name} ({image.uuid}): "
                + "; ".join(f"backup storage {bs}: {e.description}" for bs, e in failures.items()),
                cause=next(iter(failures.values())),
                imageUuid=image.uuid,
                expunged=done,
                failures={bs: e.model_dump(mode="json") for bs, e in failures.items()},
            )
        return event

    @handles(APIRecoverImageMsg)
    async def recover(self, msg: APIRecoverImageMsg) -> ImageEvent:
        return await self.ctx.queues.run(image_queue(msg.image_uuid), self._recover, msg)

    async def _recover(self, msg: APIRecoverImageMsg) -> ImageEvent:
        image = await self.load(msg.image_uuid)
        targets = _deleted(image, msg.backup_storage_uuids)
        await self._mark(image.uuid, [r.backup_storage_uuid for r in targets], ImageStatus.READY)
        return await self.event(image.uuid, "updated", msg.require_auth())

    # ----- steps ------------------------------------------------------------------------

    async def _delete_file(self, image: ImageInventory, bs_uuid: str, install_path: str) -> None:
        await self.ctx.bus.request(
            DeleteImageFromBackupStorageMsg(
                backup_storage_uuid=bs_uuid,
                install_path=install_path,
                actual_size=image.actual_size,
            ),
            Reply,
        )

    async def _mark(self, uuid: str, bs_uuids: list[str], status: ImageStatus) -> None:
        """Set these copies' status; the image is Deleted when every copy is, else Ready."""
        async with self.ctx.db.session() as session, session.begin():
            await session.execute(
                update(ImageBackupStorageRefVO)
                .where(
                    ImageBackupStorageRefVO.image_uuid == uuid,
                    ImageBackupStorageRefVO.backup_storage_uuid.in_(bs_uuids),
                )
                .values(status=status.value)
            )
            live = await session.scalar(
                select(func.count()).where(
                    ImageBackupStorageRefVO.image_uuid == uuid,
                    ImageBackupStorageRefVO.status != ImageStatus.DELETED.value,
                )
            )
            image_status = ImageStatus.READY if live else ImageStatus.DELETED
            await session.execute(
                update(ImageVO).where(ImageVO.uuid == uuid).values(status=image_status.value)
            )

    async def _forget(
        self, image: ImageInventory, bs_uuids: list[str], mode: str, auth: AuthContext
    ) -> ImageEvent:
        """Drop these copies; with none left, the image goes (after its cascade)."""
        async with self.ctx.db.session() as session, session.begin():
            await session.execute(
                delete(ImageBackupStorageRefVO).where(
                    ImageBackupStorageRefVO.image_uuid == image.uuid,
                    ImageBackupStorageRefVO.backup_storage_uuid.in_(bs_uuids),
                )
            )
        left = {r.backup_storage_uuid for r in image.backup_storage_refs} - set(bs_uuids)
        if left:
            await self._mark(image.uuid, [], ImageStatus.READY)  # recomputes the status
            return await self.event(image.uuid, "updated", auth)
        await cascade_delete(
            self.ctx.plugins.extensions(CascadeParticipant),
            self.resource_type,
            [image.uuid],
            DeleteMode(mode),
        )
        await self.remove([image.uuid], auth)
        return ImageEvent()

    # ----- CascadeParticipant: a deleted backup storage's copies are forgotten ----------

    async def cascade_children(
        self, parent_type: str, parent_uuids: tuple[str, ...]
    ) -> CascadeChildren | None:
        if parent_type != _BACKUP_STORAGE_TYPE:
            return None
        async with self.ctx.db.session() as session:
            rows = await session.execute(
                select(ImageBackupStorageRefVO.id).where(
                    ImageBackupStorageRefVO.backup_storage_uuid.in_(parent_uuids)
                )
            )
            ids = tuple(str(i) for i in rows.scalars())
        return CascadeChildren(IMAGE_REF_TYPE, ids)

    async def cascade_check(self, children: CascadeChildren) -> None:
        """Forgetting copies never refuses (ZStack deletes the refs with the storage)."""

    async def cascade_delete(self, children: CascadeChildren, mode: DeleteMode) -> None:
        """Drop the refs, and the images they leave with no copy anywhere.

        Runs outside the images' queues, on purpose: the deleting backup storage holds its
        own queue, and an image operation may be waiting for that queue (to delete a
        file) while holding the image's, so taking image queues here could deadlock.
        Image operations tolerate a ref or image that vanished under them.
        """
        ids = [int(i) for i in children.uuids]
        async with self.ctx.db.session() as session, session.begin():
            touched = set(
                (
                    await session.execute(
                        select(ImageBackupStorageRefVO.image_uuid).where(
                            ImageBackupStorageRefVO.id.in_(ids)
                        )
                    )
                ).scalars()
            )
            await session.execute(
                delete(ImageBackupStorageRefVO).where(ImageBackupStorageRefVO.id.in_(ids))
            )
            still_held = set(
                (
                    await session.execute(
                        select(ImageBackupStorageRefVO.image_uuid).where(
                            ImageBackupStorageRefVO.image_uuid.in_(touched)
                        )
                    )
                ).scalars()
            )
            orphans = sorted(touched - still_held)
            if orphans:
                await session.execute(delete(ImageVO).where(ImageVO.uuid.in_(orphans)))
                await remove_resources(session, orphans)
        for uuid in orphans:
            log.info("image %s deleted: its last backup storage was deleted", uuid)
            await self._publish(uuid, "deleted", None, None)
        for uuid in sorted(still_held):
            await self._publish(uuid, "updated", None, None)


def _chosen(image: ImageInventory, bs_uuids: list[str]) -> list[ImageBackupStorageRefInventory]:
    """The image's copies on ``bs_uuids`` (all when empty); IMAGE.1003 for a named
    storage without a copy."""
    refs = {r.backup_storage_uuid: r for r in image.backup_storage_refs}
    for bs in bs_uuids:
        if bs not in refs:
            raise ZError(
                ImageErr.NOT_ON_BACKUP_STORAGE,
                f"image {image.name} ({image.uuid}) has no copy on backup storage {bs}",
                imageUuid=image.uuid,
                backupStorageUuid=bs,
                backupStorageUuids=sorted(refs),
            )
    return [refs[bs] for bs in bs_uuids] if bs_uuids else list(refs.values())


def _deleted(image: ImageInventory, bs_uuids: list[str]) -> list[ImageBackupStorageRefInventory]:
    """The chosen copies that are Deleted; IMAGE.1002 when there is none."""
    chosen = [r for r in _chosen(image, bs_uuids) if r.status == ImageStatus.DELETED]
    if not chosen:
        raise ZError(
            ImageErr.NOT_DELETED,
            f"image {image.name} ({image.uuid}) has no Deleted copy to act on: delete it "
            "first (with image.deletionPolicy Delay or Never)",
            imageUuid=image.uuid,
            status=image.status,
        )
    return chosen
