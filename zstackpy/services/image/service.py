"""The image service: add (the ``add-image`` chain), update, state and reads here;
deletion, expunge and recovery in deletion.py.

Every change of one image runs in its work queue (``image_queue``) on its ring owner. The
image service reaches backup storage only through the backup storage service's messages.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from zstackpy.core.coalesce import CoalescedReads
from zstackpy.core.context import NodeContext
from zstackpy.core.errors import SysErr, ZError
from zstackpy.core.service import handles
from zstackpy.services.backup_storage.messages import (
    BackupStorageErr,
    BackupStorageState,
    BackupStorageStatus,
    ListBackupStorageMsg,
    ListBackupStorageReply,
)
from zstackpy.services.image.base import image_queue
from zstackpy.services.image.deletion import ImageDeletion
from zstackpy.services.image.flows import AddImageCtx
from zstackpy.services.image.messages import (
    URL_SCHEMES,
    APIAddImageMsg,
    APIChangeImageStateMsg,
    APIUpdateImageMsg,
    GetImageMsg,
    GetImageReply,
    ImageEvent,
    ImageInventory,
)

# An async API's caller waits this long by default (the REST front-end's job timeout).
DEFAULT_DOWNLOAD_TIMEOUT_S = 1800.0


class ImageService(ImageDeletion):
    def __init__(self, ctx: NodeContext) -> None:
        super().__init__(ctx)
        self._image_reads: CoalescedReads[str, ImageInventory] = CoalescedReads(self.load)

    @handles(APIAddImageMsg)
    async def add(self, msg: APIAddImageMsg) -> ImageEvent:
        assert msg.resource_uuid is not None  # the portal gives every create its UUID
        return await self.ctx.queues.run(image_queue(msg.resource_uuid), self._add, msg)

    async def _add(self, msg: APIAddImageMsg) -> ImageEvent:
        uuid, auth = msg.resource_uuid, msg.require_auth()
        assert uuid is not None
        assert msg.format is not None  # the message's validator sets it
        check_url(msg.url)
        async with self.ctx.db.session() as session:
            await self.refuse_duplicate(session, uuid)
        await self._check_backup_storage(msg.backup_storage_uuids)
        # Leave the caller's own timeout a few seconds to hear why a download failed.
        budget = msg.api_timeout_s or DEFAULT_DOWNLOAD_TIMEOUT_S
        ctx = AddImageCtx(
            node=self.ctx,
            msg=msg,
            uuid=uuid,
            auth=auth,
            format=msg.format,
            download_timeout=max(1.0, budget - 10.0),
        )
        await self.ctx.flows.run("add-image", ctx)
        event = await self.event(uuid, "created", auth)
        if ctx.failures:
            event.download_failures = ctx.failures
        return event

    async def _check_backup_storage(self, uuids: list[str]) -> None:
        """Each named backup storage exists, is Connected and Enabled, or nothing is made."""
        reply = await self.ctx.bus.request(
            ListBackupStorageMsg(uuids=uuids), ListBackupStorageReply
        )
        found = {bs.uuid: bs for bs in reply.backup_storages}
        for uuid in uuids:
            bs = found.get(uuid)
            if bs is None:
                raise ZError(
                    SysErr.RESOURCE_NOT_FOUND,
                    f"no backup storage with uuid {uuid}",
                    uuid=uuid,
                )
            if bs.status != BackupStorageStatus.CONNECTED:
                raise ZError(
                    BackupStorageErr.NOT_CONNECTED,
                    f"backup storage {bs.name} ({uuid}) is {bs.status}, not Connected",
                    backupStorageUuid=uuid,
                    status=bs.status,
                )
            if bs.state != BackupStorageState.ENABLED:
                raise ZError(
                    BackupStorageErr.DISABLED,
                    f"backup storage {bs.name} ({uuid}) is Disabled: it takes no new images",
                    backupStorageUuid=uuid,
                )

    @handles(APIUpdateImageMsg)
    async def update(self, msg: APIUpdateImageMsg) -> ImageEvent:
        return await self.ctx.queues.run(image_queue(msg.uuid), self._update, msg)

    async def _update(self, msg: APIUpdateImageMsg) -> ImageEvent:
        # Column names, not wire names: messages serialize by alias by default.
        changes = msg.model_dump(
            include={
                "name",
                "description",
                "guest_os_type",
                "media_type",
                "format",
                "system",
                "platform",
                "architecture",
                "virtio",
            },
            exclude_none=True,
            by_alias=False,
        )
        await self.update_fields(msg.uuid, changes)
        return await self.event(msg.uuid, "updated", msg.require_auth())

    @handles(APIChangeImageStateMsg)
    async def change_image_state(self, msg: APIChangeImageStateMsg) -> ImageEvent:
        inventory = await self.ctx.queues.run(
            image_queue(msg.uuid), self.change_state, msg.uuid, msg.state_event, msg.require_auth()
        )
        return ImageEvent(inventory=ImageInventory.model_validate(inventory))

    @handles(GetImageMsg)
    async def get(self, msg: GetImageMsg) -> GetImageReply:
        # A burst of VM creations asks for the same image: one read serves them.
        return GetImageReply(inventory=await self._image_reads.read(msg.image_uuid))


def check_url(url: str) -> None:
    """SYS.1007 unless ``url`` is an http, https, nfs (with a host) or file (with a path)
    URL: checked before anything is recorded."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in URL_SCHEMES:
        raise ZError(
            SysErr.INVALID_ARGUMENT,
            f"cannot add an image from {url!r}: the URL scheme {parts.scheme or '(none)'!r} is "
            f"not supported; use one of {', '.join(URL_SCHEMES)}",
            field="url",
            url=url,
            validSchemes=list(URL_SCHEMES),
        )
    if scheme == "file" and not parts.path:
        raise ZError(
            SysErr.INVALID_ARGUMENT,
            f"cannot add an image from {url!r}: a file URL needs a path",
            field="url",
            url=url,
        )
    if scheme != "file" and not parts.hostname:
        raise ZError(
            SysErr.INVALID_ARGUMENT,
            f"cannot add an image from {url!r}: a {scheme} URL needs a host",
            field="url",
            url=url,
        )
