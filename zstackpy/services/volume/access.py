"""How the volume service reaches storage: the storage's row as a backend sees it, the
backend of its type, a host to run its commands, agent calls through that host's queue,
and the backup storage an image can be copied from.

Reads of other domains' tables here are reads only (their services own every change).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from zstackpy.core.coalesce import CoalescedReads, owned_by
from zstackpy.core.context import NodeContext
from zstackpy.core.db import Database
from zstackpy.core.errors import SysErr, ZError
from zstackpy.services.backup_storage.messages import (
    BackupStorageStatus,
    ListBackupStorageMsg,
    ListBackupStorageReply,
)
from zstackpy.services.host.messages import (
    HostAgentCallMsg,
    HostAgentCallReply,
    HostStatus,
    ListHostsMsg,
    ListHostsReply,
)
from zstackpy.services.image.messages import ImageInventory, ImageStatus
from zstackpy.services.primary_storage.extensions import AgentCall
from zstackpy.services.primary_storage.models import PrimaryStorageClusterRefVO, PrimaryStorageVO
from zstackpy.services.sftp_backup_storage.models import SftpBackupStorageVO
from zstackpy.services.volume.extensions import ImageSource, VolumeStorage, VolumeStorageBackend
from zstackpy.services.volume.messages import VolumeErr

# Storage commands copy whole images: they may take long.
AGENT_TIMEOUT_S = 1800.0


@dataclass(frozen=True, slots=True)
class StorageRow:
    storage: VolumeStorage
    zone_uuid: str
    cluster_uuids: tuple[str, ...]  # the clusters it is attached to


async def load_storage(ctx: NodeContext, primary_storage_uuid: str) -> StorageRow:
    """The storage and its attachments; SYS.1003 when it does not exist."""
    # One per node: a burst's concurrent reads of one key share one read (core.coalesce).
    reads: CoalescedReads[str, StorageRow] = owned_by(
        ctx.db, "volume.storage", lambda: CoalescedReads(partial(_read_storage, ctx.db))
    )
    return await reads.read(primary_storage_uuid)


async def _read_storage(db: Database, primary_storage_uuid: str) -> StorageRow:
    async def read(session: AsyncSession) -> StorageRow:
        ps = await session.get(PrimaryStorageVO, primary_storage_uuid)
        if ps is None:
            raise ZError(
                SysErr.RESOURCE_NOT_FOUND,
                f"no primary storage with uuid {primary_storage_uuid}",
                uuid=primary_storage_uuid,
            )
        clusters = (
            await session.execute(
                select(PrimaryStorageClusterRefVO.cluster_uuid).where(
                    PrimaryStorageClusterRefVO.primary_storage_uuid == ps.uuid
                )
            )
        ).scalars()
        return StorageRow(
            VolumeStorage(ps.uuid, ps.type, ps.url, ps.mount_path), ps.zone_uuid, tuple(clusters)
        )

    return await db.read(read)


def backend_for(ctx: NodeContext, storage_type: str) -> VolumeStorageBackend:
    """The volume backend of a storage type; VOLUME.1004 when none serves it."""
    for backend in ctx.plugins.extensions(VolumeStorageBackend):
        if backend.storage_type() == storage_type:
            return backend
    raise ZError(
        VolumeErr.UNSUPPORTED_STORAGE,
        f"volumes cannot live on primary storage of type {storage_type!r}: no plugin serves it",
        type=storage_type,
    )


def agent_call(ctx: NodeContext, host_uuid: str, timeout: float = AGENT_TIMEOUT_S) -> AgentCall:
    """Agent commands on ``host_uuid``, run in the host's queue on its owner node."""

    async def call(path: str, command: dict[str, Any]) -> dict[str, Any]:
        reply = await ctx.bus.request(
            HostAgentCallMsg(host_uuid=host_uuid, path=path, command=command, timeout=timeout),
            HostAgentCallReply,
            timeout=timeout + 30,
        )
        return reply.result

    return call


async def command_host(
    ctx: NodeContext, row: StorageRow, volume_host: str | None, preferred: str | None = None
) -> str:
    """The host that runs a command on ``row``'s storage: the volume's own host for
    host-local storage (``volume_host``), else ``preferred`` when it is Connected in an
    attached cluster, else any such host. VOLUME.1010 when there is none."""
    if volume_host is not None:
        return volume_host
    if not row.cluster_uuids:
        raise ZError(
            VolumeErr.NO_HOST,
            f"primary storage {row.storage.primary_storage_uuid} is attached to no cluster: "
            "no host can reach it",
            primaryStorageUuid=row.storage.primary_storage_uuid,
        )
    if preferred is not None and await _connected_hosts(ctx, row, [preferred]):
        return preferred  # one row read, not every host of the clusters
    hosts = await _connected_hosts(ctx, row)
    if not hosts:
        raise ZError(
            VolumeErr.NO_HOST,
            f"no Connected host reaches primary storage {row.storage.primary_storage_uuid}",
            primaryStorageUuid=row.storage.primary_storage_uuid,
            clusterUuids=list(row.cluster_uuids),
        )
    return hosts[0]


async def _connected_hosts(
    ctx: NodeContext, row: StorageRow, among: list[str] | None = None
) -> list[str]:
    """Connected hosts of the storage's clusters (only ``among``, when given)."""
    reply = await ctx.bus.request(
        ListHostsMsg(
            cluster_uuids=list(row.cluster_uuids), host_uuids=among or [], connected_only=True
        ),
        ListHostsReply,
    )
    return [h.uuid for h in reply.hosts if h.status == HostStatus.CONNECTED]


async def image_source(ctx: NodeContext, image: ImageInventory, zone_uuid: str) -> ImageSource:
    """A Connected SFTP backup storage of ``zone_uuid`` holding ``image`` Ready;
    VOLUME.1002 when there is none."""
    ready = {
        r.backup_storage_uuid: r.install_path
        for r in image.backup_storage_refs
        if r.status == ImageStatus.READY
    }
    if ready:
        reply = await ctx.bus.request(
            ListBackupStorageMsg(uuids=sorted(ready), connected_only=True), ListBackupStorageReply
        )
        usable = [
            bs.uuid
            for bs in reply.backup_storages
            if bs.status == BackupStorageStatus.CONNECTED and zone_uuid in bs.attached_zone_uuids
        ]
        if usable:
            async with ctx.db.session() as session:
                rows = (
                    await session.execute(
                        select(SftpBackupStorageVO).where(SftpBackupStorageVO.uuid.in_(usable))
                    )
                ).scalars()
                for bs in sorted(rows, key=lambda r: r.uuid):
                    return ImageSource(
                        backup_storage_uuid=bs.uuid,
                        hostname=bs.hostname,
                        username=bs.username,
                        ssh_port=bs.ssh_port,
                        install_path=ready[bs.uuid],
                    )
    raise ZError(
        VolumeErr.NO_IMAGE_SOURCE,
        f"image {image.name} ({image.uuid}) is on no Connected SFTP backup storage of zone "
        f"{zone_uuid}: its primary storage cannot copy it",
        imageUuid=image.uuid,
        zoneUuid=zone_uuid,
        backupStorageUuids=sorted(ready),
    )
