"""What every part of the volume service shares: the queue, the row as VolumeView and
inventory, change events, and removing a volume from its storage for good."""

from __future__ import annotations

import logging
from functools import cached_property
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from zstackpy.api.messages import AuthContext
from zstackpy.api.ownership import remove_resources
from zstackpy.core.cascade import CascadeParticipant, DeleteMode, cascade_delete
from zstackpy.core.coalesce import BatchedReads
from zstackpy.core.errors import SysErr, ZError
from zstackpy.core.workqueue import QueueKey
from zstackpy.services.primary_storage.messages import ReturnPrimaryStorageCapacityMsg
from zstackpy.services.resource_service import Change, ResourceService
from zstackpy.services.volume.access import agent_call, backend_for, command_host, load_storage
from zstackpy.services.volume.messages import (
    VOLUME_RESOURCE_TYPE,
    VOLUME_SERVICE,
    VolumeErr,
    VolumeEvent,
    VolumeInventory,
    VolumeStatus,
    VolumeView,
)
from zstackpy.services.volume.models import VolumeVO

log = logging.getLogger(__name__)


def volume_queue(uuid: str) -> QueueKey:
    """Every change of one volume runs in this queue, on the volume's ring owner."""
    return QueueKey("volume", uuid)


def view_of(row: VolumeVO) -> VolumeView:
    return VolumeView(
        uuid=row.uuid,
        type="Root" if row.type == "Root" else "Data",
        vm_instance_uuid=row.vm_instance_uuid,
        primary_storage_uuid=row.primary_storage_uuid or "",
        host_uuid=row.host_uuid,
        install_path=row.install_path or "",
        format=row.format,
        size=row.size,
        device_id=row.device_id,
    )


def is_instantiated(row: VolumeVO) -> bool:
    """Whether the volume has a file and a reservation on its storage."""
    return row.status != VolumeStatus.NOT_INSTANTIATED and row.install_path is not None


class VolumeBase(ResourceService):
    name = VOLUME_SERVICE
    model = VolumeVO
    inventory = VolumeInventory
    resource_type = VOLUME_RESOURCE_TYPE
    noun = "volume"

    async def load(self, uuid: str) -> VolumeVO:
        """The row (detached from its session, maybe shared with a concurrent load of the
        same volume: read-only); SYS.1003 when there is none."""
        return await self._row_reads.read(uuid)

    async def exists(self, uuid: str) -> bool:
        try:
            await self._row_reads.read(uuid)
        except ZError as exc:
            if exc.code == SysErr.RESOURCE_NOT_FOUND:
                return False
            raise
        return True

    @cached_property
    def _row_reads(self) -> BatchedReads[str, VolumeVO]:
        # A burst of creations loads a volume each: one query serves the burst's loads.
        return BatchedReads(self._read_rows, self._not_found)

    async def _read_rows(self, uuids: list[str]) -> dict[str, VolumeVO]:
        found = select(VolumeVO).where(VolumeVO.uuid.in_(uuids))

        async def read(session: AsyncSession) -> dict[str, VolumeVO]:
            return {row.uuid: row for row in await session.scalars(found)}

        return await self.ctx.db.read(read)

    def _not_found(self, uuid: str) -> ZError:
        return ZError(SysErr.RESOURCE_NOT_FOUND, f"no {self.noun} with uuid {uuid}", uuid=uuid)

    async def event(self, uuid: str, change: Change, auth: AuthContext | None) -> VolumeEvent:
        """The API answer after a change: the inventory, announced to subscribers."""
        return await self.announce(await self.load(uuid), change, auth)

    async def announce(
        self, row: VolumeVO, change: Change, auth: AuthContext | None
    ) -> VolumeEvent:
        """``event`` for a row the caller has just read."""
        inventory = VolumeInventory.model_validate(row, from_attributes=True)
        await self._publish(
            row.uuid, change, auth, inventory.model_dump(mode="json", by_alias=True)
        )
        return VolumeEvent(inventory=inventory)

    async def set_fields(self, uuid: str, **changes: Any) -> None:
        async with self.ctx.db.session() as session, session.begin():
            await session.execute(update(VolumeVO).where(VolumeVO.uuid == uuid).values(**changes))

    async def expunge(self, row: VolumeVO, auth: AuthContext | None) -> None:
        """Remove a volume for good, in its queue: its snapshots (cascade), its file (an
        agent that cannot delete it leaves it behind, logged, as ZStack leaves it to its
        garbage collector), its reservation, its row."""
        await cascade_delete(
            self.ctx.plugins.extensions(CascadeParticipant),
            VOLUME_RESOURCE_TYPE,
            [row.uuid],
            DeleteMode.ENFORCING,
        )
        if is_instantiated(row) and row.primary_storage_uuid is not None:
            await self._delete_file(row)
            reply = await self.ctx.bus.call(
                ReturnPrimaryStorageCapacityMsg(
                    primary_storage_uuid=row.primary_storage_uuid,
                    host_uuid=row.host_uuid,
                    size=row.size,
                )
            )
            if not reply.success:
                log.warning("volume %s: capacity not returned: %s", row.uuid, reply.error)
        async with self.ctx.db.session() as session, session.begin():
            await session.execute(delete(VolumeVO).where(VolumeVO.uuid == row.uuid))
            await remove_resources(session, [row.uuid])
        await self._publish(row.uuid, "deleted", auth, None)

    async def _delete_file(self, row: VolumeVO) -> None:
        if row.primary_storage_uuid is None or row.install_path is None:
            return
        try:
            storage = await load_storage(self.ctx, row.primary_storage_uuid)
            backend = backend_for(self.ctx, storage.storage.storage_type)
            host = await command_host(self.ctx, storage, row.host_uuid)
            await backend.delete_file(storage.storage, row.install_path, agent_call(self.ctx, host))
        except ZError as exc:
            log.warning("volume %s: %s stays behind: %s", row.uuid, row.install_path, exc)

    def refuse_root(self, row: VolumeVO, action: str) -> None:
        if row.type == "Root":
            raise ZError(
                VolumeErr.WRONG_STATE,
                f"volume {row.name} ({row.uuid}) is a root volume: {action} its VM instead",
                uuid=row.uuid,
                type=row.type,
            )
