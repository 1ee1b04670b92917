"""Flows of the ``add-image`` chain (``flows/image.yaml``): record the image (Downloading),
download it onto every named backup storage at once, mark it Ready with the sizes the
storage reported. A failure anywhere deletes the copies made and the image row.

Storage that fails while others succeed does not fail the chain: the image is Ready on
the others and the failures are reported beside the inventory.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import delete, update

from zstackpy.api.messages import AuthContext
from zstackpy.api.ownership import add_resource, remove_resources
from zstackpy.core.context import NodeContext
from zstackpy.core.errors import ErrorInfo, SysErr, ZError
from zstackpy.core.flow import Flow
from zstackpy.services.backup_storage.messages import (
    DeleteImageFromBackupStorageMsg,
    DownloadImageToBackupStorageMsg,
    DownloadImageToBackupStorageReply,
)
from zstackpy.services.image.messages import IMAGE_TYPE, APIAddImageMsg, ImageErr, ImageStatus
from zstackpy.services.image.models import ImageBackupStorageRefVO, ImageVO

# The bus call outlives the agent's own download timeout by this much, so the agent's
# timeout error (naming the storage) arrives rather than a bare bus timeout.
BUS_MARGIN_S = 5.0


@dataclass
class AddImageCtx:
    node: NodeContext
    msg: APIAddImageMsg
    uuid: str
    auth: AuthContext
    format: str
    download_timeout: float  # seconds each storage may take
    recorded: bool = False
    copies: dict[str, DownloadImageToBackupStorageReply] = field(default_factory=dict)
    failures: dict[str, ErrorInfo] = field(default_factory=dict)


class RecordImage(Flow[AddImageCtx]):
    async def run(self, ctx: AddImageCtx) -> None:
        msg = ctx.msg
        async with ctx.node.db.session() as session, session.begin():
            session.add(
                ImageVO(
                    uuid=ctx.uuid,
                    name=msg.name,
                    description=msg.description,
                    state="Enabled",
                    status=ImageStatus.DOWNLOADING.value,
                    size=0,
                    actual_size=0,
                    url=msg.url,
                    media_type=msg.media_type,
                    guest_os_type=msg.guest_os_type,
                    type=msg.type,
                    platform=msg.platform,
                    architecture=msg.architecture,
                    format=ctx.format,
                    system=msg.system,
                    virtio=msg.virtio,
                )
            )
            add_resource(
                session, uuid=ctx.uuid, resource_type=IMAGE_TYPE, name=msg.name, auth=ctx.auth
            )
        ctx.recorded = True

    async def rollback(self, ctx: AddImageCtx) -> None:
        if not ctx.recorded:
            return
        async with ctx.node.db.session() as session, session.begin():
            await session.execute(
                delete(ImageBackupStorageRefVO).where(
                    ImageBackupStorageRefVO.image_uuid == ctx.uuid
                )
            )
            await session.execute(delete(ImageVO).where(ImageVO.uuid == ctx.uuid))
            await remove_resources(session, [ctx.uuid])


class DownloadImage(Flow[AddImageCtx]):
    async def run(self, ctx: AddImageCtx) -> None:
        targets = ctx.msg.backup_storage_uuids
        replies = await ctx.node.bus.call_many(
            [
                DownloadImageToBackupStorageMsg(
                    backup_storage_uuid=bs,
                    image_uuid=ctx.uuid,
                    url=ctx.msg.url,
                    format=ctx.format,
                    timeout=ctx.download_timeout,
                )
                for bs in targets
            ],
            parallelism=len(targets),
            timeout=ctx.download_timeout + BUS_MARGIN_S,
        )
        for bs, reply in zip(targets, replies, strict=True):
            if reply.success and isinstance(reply, DownloadImageToBackupStorageReply):
                ctx.copies[bs] = reply
            else:
                ctx.failures[bs] = reply.error or ErrorInfo(
                    code=SysErr.INTERNAL, description=f"unexpected answer {reply.wire_type()}"
                )
        if ctx.copies:
            async with ctx.node.db.session() as session, session.begin():
                for bs, copy in ctx.copies.items():
                    session.add(
                        ImageBackupStorageRefVO(
                            image_uuid=ctx.uuid,
                            backup_storage_uuid=bs,
                            install_path=copy.install_path,
                            status=ImageStatus.READY.value,
                        )
                    )
            return
        reasons = "; ".join(f"{bs}: {e.description}" for bs, e in ctx.failures.items())
        raise ZError(
            ImageErr.DOWNLOAD_FAILED,
            f"image {ctx.msg.name} could not be added to any backup storage: {reasons}",
            cause=next(iter(ctx.failures.values())),
            url=ctx.msg.url,
            failures={bs: e.model_dump(mode="json") for bs, e in ctx.failures.items()},
        )

    async def rollback(self, ctx: AddImageCtx) -> None:
        # The refs go with the image row (record-image's rollback); the files and their
        # reserved capacity must be given back here.
        replies = await ctx.node.bus.call_many(
            [
                DeleteImageFromBackupStorageMsg(
                    backup_storage_uuid=bs,
                    install_path=copy.install_path,
                    actual_size=copy.actual_size,
                )
                for bs, copy in ctx.copies.items()
            ]
        )
        for reply in replies:
            reply.raise_if_error()


class MarkImageReady(Flow[AddImageCtx]):
    async def run(self, ctx: AddImageCtx) -> None:
        first = next(iter(ctx.copies.values()))
        async with ctx.node.db.session() as session, session.begin():
            await session.execute(
                update(ImageVO)
                .where(ImageVO.uuid == ctx.uuid)
                .values(
                    status=ImageStatus.READY.value,
                    size=first.size,
                    actual_size=first.actual_size,
                    md5_sum=first.md5_sum,
                )
            )


IMAGE_FLOWS = {
    "record-image": RecordImage,
    "download-image": DownloadImage,
    "mark-image-ready": MarkImageReady,
}
