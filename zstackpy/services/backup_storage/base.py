"""What every part of the backup storage service shares: the row with its zones, the
type's backend, status changes and change events."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from zstackpy.api.messages import AuthContext
from zstackpy.core.errors import SysErr, ZError
from zstackpy.services.backup_storage.extensions import BackupStorageBackend, BackupStorageSpec
from zstackpy.services.backup_storage.messages import (
    BACKUP_STORAGE_SERVICE,
    BACKUP_STORAGE_TYPE,
    BackupStorageErr,
    BackupStorageEvent,
    BackupStorageInventory,
    BackupStorageState,
    BackupStorageStatus,
)
from zstackpy.services.backup_storage.models import BackupStorageVO
from zstackpy.services.resource_service import ResourceService

log = logging.getLogger(__name__)


class BackupStorageBase(ResourceService):
    name = BACKUP_STORAGE_SERVICE
    model = BackupStorageVO
    inventory = BackupStorageInventory
    resource_type = BACKUP_STORAGE_TYPE
    noun = "backup storage"

    async def require(self, session: AsyncSession, uuid: str) -> Any:
        # The inventory lists attachedZoneUuids: load the refs with the row, in one query.
        row = await session.get(
            BackupStorageVO, uuid, options=[selectinload(BackupStorageVO.zone_refs)]
        )
        if row is None:
            raise ZError(
                SysErr.RESOURCE_NOT_FOUND, f"no backup storage with uuid {uuid}", uuid=uuid
            )
        return row

    def backend_for(self, bs_type: str) -> BackupStorageBackend:
        for backend in self.ctx.plugins.extensions(BackupStorageBackend):
            if backend.serves_type(bs_type):
                return backend
        raise ZError(
            BackupStorageErr.NO_BACKEND,
            f"no installed plugin serves backup storage of type {bs_type}",
            type=bs_type,
        )

    async def spec(
        self, uuid: str, *, connected: bool = False, enabled: bool = False
    ) -> BackupStorageSpec:
        """The storage's spec; BS.1001 unless Connected (``connected``), BS.1002 unless
        Enabled (``enabled``). Call in the storage's queue when the answer must hold."""
        async with self.ctx.db.session() as session:
            row = await self.require(session, uuid)
        if connected and row.status != BackupStorageStatus.CONNECTED:
            raise ZError(
                BackupStorageErr.NOT_CONNECTED,
                f"backup storage {row.name} ({uuid}) is {row.status}, not Connected",
                backupStorageUuid=uuid,
                status=row.status,
            )
        if enabled and row.state != BackupStorageState.ENABLED:
            raise ZError(
                BackupStorageErr.DISABLED,
                f"backup storage {row.name} ({uuid}) is Disabled: it takes no new images",
                backupStorageUuid=uuid,
            )
        return BackupStorageSpec(uuid=row.uuid, name=row.name, type=row.type, url=row.url)

    async def set_status(self, uuid: str, status: BackupStorageStatus, reason: str) -> None:
        """In the storage's queue: change its status and tell subscribers."""
        async with self.ctx.db.session() as session, session.begin():
            row = await self.require(session, uuid)
            old = row.status
            row.status = status.value
        if old != status.value:
            log.info("backup storage %s: %s -> %s (%s)", uuid, old, status.value, reason)
            await self.announce(uuid)

    async def announce(self, uuid: str) -> None:
        """Tell subscribers about a change the system made (ping, cascade): no account."""
        async with self.ctx.db.session() as session:
            row = await self.require(session, uuid)
        inventory = BackupStorageInventory.model_validate(row, from_attributes=True)
        await self._publish(uuid, "updated", None, inventory.model_dump(mode="json"))

    async def event(self, uuid: str, auth: AuthContext) -> BackupStorageEvent:
        """The API answer after a change: the inventory, announced to subscribers."""
        inventory = await self.answer(uuid, "updated", auth)
        return BackupStorageEvent(inventory=BackupStorageInventory.model_validate(inventory))
