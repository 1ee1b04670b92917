"""Flows that make a volume on primary storage (chains in ``flows/volume-create.yaml``):

- ``create-root-volume``: reserve capacity, record the row (Creating), make sure the image
  is cached on the storage (and host), clone it, mark the volume Ready.
- ``create-empty-volume``: reserve, record, make an empty file, mark Ready (data volumes,
  and root volumes of ISO images).
- ``instantiate-data-volume``: the same for a NotInstantiated row that exists already.

A failure anywhere undoes every earlier step: the file deleted, a cache entry this run made
dropped (unless another volume needs it), the capacity returned, the row removed (or put
back to NotInstantiated).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import cast

from sqlalchemy import Table, delete, update
from sqlalchemy.ext.asyncio import AsyncSession

from zstackpy.api.ownership import remove_resources
from zstackpy.core.bus.message import Reply
from zstackpy.core.context import NodeContext
from zstackpy.core.db import ResourceVO
from zstackpy.core.errors import ZError
from zstackpy.core.flow import Flow
from zstackpy.services.image.messages import ImageInventory
from zstackpy.services.primary_storage.extensions import AgentCall
from zstackpy.services.primary_storage.messages import (
    AllocatePrimaryStorageCapacityMsg,
    AllocatePrimaryStorageCapacityReply,
    ReturnPrimaryStorageCapacityMsg,
)
from zstackpy.services.volume.access import StorageRow, agent_call, backend_for, load_storage
from zstackpy.services.volume.cache import drop_cache_if_unused, ensure_cache
from zstackpy.services.volume.extensions import VolumeStorageBackend
from zstackpy.services.volume.messages import (
    VOLUME_RESOURCE_TYPE,
    VolumeErr,
    VolumeStatus,
    VolumeType,
)
from zstackpy.services.volume.models import VolumeVO

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Placement:
    """The storage chosen for a volume, how to reach it, and the volume's file there."""

    primary_storage_uuid: str
    host_uuid: str | None  # the host whose disk holds it (local storage)
    row: StorageRow
    backend: VolumeStorageBackend
    call: AgentCall
    install_path: str


@dataclass
class CreateVolumeCtx:
    """One volume being made. ``host_uuid`` is the host that must reach it (the VM's);
    ``cluster_uuid`` its cluster, where storage is looked for."""

    node: NodeContext
    volume_uuid: str
    name: str
    volume_type: VolumeType
    size: int
    host_uuid: str
    cluster_uuid: str
    vm_instance_uuid: str | None = None
    device_id: int | None = None
    description: str | None = None
    primary_storage_uuid: str | None = None  # required storage
    disk_offering_uuid: str | None = None
    image: ImageInventory | None = None  # root volumes
    account_uuid: str | None = None
    existing: bool = False  # instantiate a NotInstantiated row instead of adding one
    # filled by the flows
    allocation: AllocatePrimaryStorageCapacityReply | None = None
    placement: Placement | None = None
    recorded: bool = False
    cache_path: str | None = None
    cache_made: bool = False
    file_tried: bool = False
    actual_size: int = 0

    @property
    def placed(self) -> Placement:
        """Where the volume goes; set by allocate-volume-capacity, the first step."""
        if self.placement is None:
            raise RuntimeError(f"volume {self.volume_uuid} has no place yet")
        return self.placement

    @property
    def format(self) -> str:
        if self.image is not None and self.image.format in ("qcow2", "raw"):
            return self.image.format
        return "qcow2"


class AllocateVolumeCapacity(Flow[CreateVolumeCtx]):
    """Reserve the volume's size on storage of the VM's cluster (on the VM's host for
    local storage), honouring a required storage."""

    async def run(self, ctx: CreateVolumeCtx) -> None:
        ctx.allocation = await ctx.node.bus.request(
            AllocatePrimaryStorageCapacityMsg(
                primary_storage_uuid=ctx.primary_storage_uuid,
                cluster_uuids=[ctx.cluster_uuid],
                host_uuid=ctx.host_uuid,
                size=ctx.size,
            ),
            AllocatePrimaryStorageCapacityReply,
        )
        allocation = ctx.allocation
        row = await load_storage(ctx.node, allocation.primary_storage_uuid)
        if ctx.cluster_uuid not in row.cluster_uuids:
            # Only a required storage gets here unchecked: the allocation chose it by name.
            raise ZError(
                VolumeErr.UNREACHABLE_STORAGE,
                f"primary storage {allocation.primary_storage_uuid} is not attached to "
                f"cluster {ctx.cluster_uuid}: host {ctx.host_uuid} cannot reach it",
                primaryStorageUuid=allocation.primary_storage_uuid,
                clusterUuid=ctx.cluster_uuid,
                hostUuid=ctx.host_uuid,
            )
        backend = backend_for(ctx.node, row.storage.storage_type)
        # The VM's host is Connected in that cluster (the VM was placed there): it runs
        # the commands, or the host whose disk holds the volume on local storage.
        host = allocation.host_uuid or ctx.host_uuid
        ctx.placement = Placement(
            primary_storage_uuid=allocation.primary_storage_uuid,
            host_uuid=allocation.host_uuid,
            row=row,
            backend=backend,
            call=agent_call(ctx.node, host),
            install_path=backend.volume_path(row.storage, ctx.volume_uuid, ctx.volume_type),
        )

    async def rollback(self, ctx: CreateVolumeCtx) -> None:
        if ctx.allocation is None:
            return
        await ctx.node.bus.request(
            ReturnPrimaryStorageCapacityMsg(
                primary_storage_uuid=ctx.allocation.primary_storage_uuid,
                host_uuid=ctx.allocation.host_uuid,
                size=ctx.allocation.size,
            ),
            Reply,
        )


class RecordVolume(Flow[CreateVolumeCtx]):
    """The row, Creating, where the volume goes (a NotInstantiated row gets the place)."""

    async def run(self, ctx: CreateVolumeCtx) -> None:
        where = ctx.placed
        placed = {
            "primary_storage_uuid": where.primary_storage_uuid,
            "host_uuid": where.host_uuid,
            "install_path": where.install_path,
            "format": ctx.format,
            "status": VolumeStatus.CREATING.value,
        }

        async def record(session: AsyncSession) -> None:
            if ctx.existing:
                await session.execute(
                    update(VolumeVO).where(VolumeVO.uuid == ctx.volume_uuid).values(**placed)
                )
            else:
                session.add(
                    VolumeVO(
                        uuid=ctx.volume_uuid,
                        name=ctx.name,
                        description=ctx.description,
                        vm_instance_uuid=ctx.vm_instance_uuid,
                        last_vm_instance_uuid=ctx.vm_instance_uuid,
                        disk_offering_uuid=ctx.disk_offering_uuid,
                        root_image_uuid=ctx.image.uuid if ctx.image else None,
                        type=ctx.volume_type.value,
                        size=ctx.size,
                        actual_size=0,
                        device_id=ctx.device_id,
                        state="Enabled",
                        is_shareable=False,
                        **placed,
                    )
                )
                # Owned by the VM's account (ownership.add_resource takes an API caller).
                session.add(
                    ResourceVO(
                        uuid=ctx.volume_uuid,
                        resource_type=VOLUME_RESOURCE_TYPE,
                        resource_name=ctx.name,
                        account_uuid=ctx.account_uuid,
                    )
                )

        await ctx.node.db.write(record)
        ctx.recorded = True

    async def rollback(self, ctx: CreateVolumeCtx) -> None:
        if not ctx.recorded:
            return
        async with ctx.node.db.session() as session, session.begin():
            if ctx.existing:
                await session.execute(
                    update(VolumeVO)
                    .where(VolumeVO.uuid == ctx.volume_uuid)
                    .values(
                        # Back to where it must go, if anywhere (its creation's choice).
                        primary_storage_uuid=ctx.primary_storage_uuid,
                        host_uuid=None,
                        install_path=None,
                        status=VolumeStatus.NOT_INSTANTIATED.value,
                    )
                )
            else:
                await session.execute(delete(VolumeVO).where(VolumeVO.uuid == ctx.volume_uuid))
                await remove_resources(session, [ctx.volume_uuid])


class PrepareImageCache(Flow[CreateVolumeCtx]):
    """The image on the storage (and host), copied from backup storage the first time."""

    async def run(self, ctx: CreateVolumeCtx) -> None:
        where, image = ctx.placed, _image(ctx)
        ctx.cache_path, ctx.cache_made = await ensure_cache(
            ctx.node, where.row, where.backend, where.host_uuid, image, where.call
        )

    async def rollback(self, ctx: CreateVolumeCtx) -> None:
        if not ctx.cache_made:
            return
        where, image = ctx.placed, _image(ctx)
        # Our own row must not count as a user of the cache: the row rollback runs after.
        async with ctx.node.db.session() as session, session.begin():
            await session.execute(
                update(VolumeVO)
                .where(VolumeVO.uuid == ctx.volume_uuid)
                .values(root_image_uuid=None)
            )
        await drop_cache_if_unused(
            ctx.node, where.row, where.backend, where.host_uuid, image.uuid, where.call
        )


class CreateVolumeFromCache(Flow[CreateVolumeCtx]):
    async def run(self, ctx: CreateVolumeCtx) -> None:
        where = ctx.placed
        if ctx.cache_path is None:
            raise RuntimeError("create-volume-from-cache runs after prepare-image-cache")
        ctx.file_tried = True
        ctx.actual_size = await where.backend.create_from_cache(
            where.row.storage,
            ctx.cache_path,
            where.install_path,
            ctx.volume_uuid,
            ctx.size,
            where.call,
        )

    async def rollback(self, ctx: CreateVolumeCtx) -> None:
        await _delete_file(ctx)


class CreateEmptyVolume(Flow[CreateVolumeCtx]):
    async def run(self, ctx: CreateVolumeCtx) -> None:
        where = ctx.placed
        ctx.file_tried = True
        await where.backend.create_empty(
            where.row.storage, where.install_path, ctx.volume_uuid, ctx.size, where.call
        )

    async def rollback(self, ctx: CreateVolumeCtx) -> None:
        await _delete_file(ctx)


class MarkVolumeReady(Flow[CreateVolumeCtx]):
    async def run(self, ctx: CreateVolumeCtx) -> None:
        # On the table, not the mapped class: no session holds the row to keep in step,
        # and the ORM's bulk-update machinery cost more than the statement.
        table = cast(Table, VolumeVO.__table__)  # declared as a FromClause; a Table at runtime
        ready = (
            update(table)
            .where(table.c.uuid == ctx.volume_uuid)
            .values(status=VolumeStatus.READY.value, actual_size=ctx.actual_size)
        )

        async def write(session: AsyncSession) -> None:
            await session.execute(ready)

        await ctx.node.db.write(write)


async def _delete_file(ctx: CreateVolumeCtx) -> None:
    if not ctx.file_tried:
        return
    where = ctx.placed
    try:
        await where.backend.delete_file(where.row.storage, where.install_path, where.call)
    except ZError as exc:
        log.warning("volume %s: could not delete %s: %s", ctx.volume_uuid, where.install_path, exc)


def _image(ctx: CreateVolumeCtx) -> ImageInventory:
    if ctx.image is None:
        raise RuntimeError(f"volume {ctx.volume_uuid}: a root volume from cache needs its image")
    return ctx.image


VOLUME_FLOWS = {
    "allocate-volume-capacity": AllocateVolumeCapacity,
    "record-volume": RecordVolume,
    "prepare-image-cache": PrepareImageCache,
    "create-volume-from-cache": CreateVolumeFromCache,
    "make-empty-volume-file": CreateEmptyVolume,
    "mark-volume-ready": MarkVolumeReady,
}
