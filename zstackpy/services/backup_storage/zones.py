"""Zone attachment of backup storage: attach, detach, and the zone cascade (a zone's
deletion detaches its backup storage; the storage itself stays, as in ZStack)."""

from __future__ import annotations

from sqlalchemy import delete, select

from zstackpy.core.bus.message import Reply
from zstackpy.core.cascade import CascadeChildren, DeleteMode
from zstackpy.core.errors import SysErr, ZError
from zstackpy.core.service import handles
from zstackpy.services.backup_storage.base import BackupStorageBase
from zstackpy.services.backup_storage.messages import (
    APIAttachBackupStorageToZoneMsg,
    APIDetachBackupStorageFromZoneMsg,
    BackupStorageErr,
    BackupStorageEvent,
    DetachZonesFromBackupStorageMsg,
    backup_storage_queue,
)
from zstackpy.services.backup_storage.models import BackupStorageZoneRefVO
from zstackpy.services.zone.models import ZoneVO

ZONE_REF_TYPE = "BackupStorageZoneRefVO"
_ZONE_TYPE = "ZoneVO"


class ZoneAttachment(BackupStorageBase):
    """Handlers of the backup storage service about zones (a part of that service)."""

    @handles(APIAttachBackupStorageToZoneMsg)
    async def attach(self, msg: APIAttachBackupStorageToZoneMsg) -> BackupStorageEvent:
        key = backup_storage_queue(msg.backup_storage_uuid)
        return await self.ctx.queues.run(key, self._attach, msg)

    async def _attach(self, msg: APIAttachBackupStorageToZoneMsg) -> BackupStorageEvent:
        bs_uuid, zone_uuid = msg.backup_storage_uuid, msg.zone_uuid
        async with self.ctx.db.session() as session, session.begin():
            row = await self.require(session, bs_uuid)
            if await session.get(ZoneVO, zone_uuid) is None:
                raise ZError(
                    SysErr.RESOURCE_NOT_FOUND, f"no zone with uuid {zone_uuid}", uuid=zone_uuid
                )
            if zone_uuid in row.attached_zone_uuids:
                raise ZError(
                    BackupStorageErr.ALREADY_ATTACHED,
                    f"backup storage {bs_uuid} is already attached to zone {zone_uuid}",
                    backupStorageUuid=bs_uuid,
                    zoneUuid=zone_uuid,
                )
            session.add(BackupStorageZoneRefVO(backup_storage_uuid=bs_uuid, zone_uuid=zone_uuid))
        return await self.event(bs_uuid, msg.require_auth())

    @handles(APIDetachBackupStorageFromZoneMsg)
    async def detach(self, msg: APIDetachBackupStorageFromZoneMsg) -> BackupStorageEvent:
        key = backup_storage_queue(msg.backup_storage_uuid)
        return await self.ctx.queues.run(key, self._detach, msg)

    async def _detach(self, msg: APIDetachBackupStorageFromZoneMsg) -> BackupStorageEvent:
        bs_uuid, zone_uuid = msg.backup_storage_uuid, msg.zone_uuid
        async with self.ctx.db.session() as session:
            row = await self.require(session, bs_uuid)
        if zone_uuid not in row.attached_zone_uuids:
            raise ZError(
                BackupStorageErr.NOT_ATTACHED,
                f"backup storage {bs_uuid} is not attached to zone {zone_uuid}",
                backupStorageUuid=bs_uuid,
                zoneUuid=zone_uuid,
                attachedZoneUuids=row.attached_zone_uuids,
            )
        await self._drop_refs(bs_uuid, [zone_uuid])
        return await self.event(bs_uuid, msg.require_auth())

    # ----- CascadeParticipant: a zone's backup storage is detached, never deleted -------

    async def cascade_children(
        self, parent_type: str, parent_uuids: tuple[str, ...]
    ) -> CascadeChildren | None:
        if parent_type != _ZONE_TYPE:
            return None
        async with self.ctx.db.session() as session:
            rows = await session.execute(
                select(BackupStorageZoneRefVO.id).where(
                    BackupStorageZoneRefVO.zone_uuid.in_(parent_uuids)
                )
            )
            ids = tuple(str(i) for i in rows.scalars())
        return CascadeChildren(ZONE_REF_TYPE, ids)

    async def cascade_check(self, children: CascadeChildren) -> None:
        """Detaching never refuses (ZStack: a zone's deletion detaches its storage)."""

    async def cascade_delete(self, children: CascadeChildren, mode: DeleteMode) -> None:
        ids = [int(i) for i in children.uuids]
        async with self.ctx.db.session() as session:
            rows = await session.execute(
                select(
                    BackupStorageZoneRefVO.backup_storage_uuid, BackupStorageZoneRefVO.zone_uuid
                ).where(BackupStorageZoneRefVO.id.in_(ids))
            )
            zones_of: dict[str, list[str]] = {}
            for bs_uuid, zone_uuid in rows:
                zones_of.setdefault(bs_uuid, []).append(zone_uuid)
        # Each storage's refs change in its own queue on its owner, as an API detach would.
        replies = await self.ctx.bus.call_many(
            [
                DetachZonesFromBackupStorageMsg(backup_storage_uuid=bs, zone_uuids=zones)
                for bs, zones in zones_of.items()
            ],
            parallelism=8,
        )
        for reply in replies:
            reply.raise_if_error()

    @handles(DetachZonesFromBackupStorageMsg)
    async def detach_zones(self, msg: DetachZonesFromBackupStorageMsg) -> Reply:
        key = backup_storage_queue(msg.backup_storage_uuid)
        await self.ctx.queues.run(key, self._drop_refs, msg.backup_storage_uuid, msg.zone_uuids)
        await self.announce(msg.backup_storage_uuid)
        return Reply()

    async def _drop_refs(self, bs_uuid: str, zone_uuids: list[str]) -> None:
        async with self.ctx.db.session() as session, session.begin():
            await session.execute(
                delete(BackupStorageZoneRefVO).where(
                    BackupStorageZoneRefVO.backup_storage_uuid == bs_uuid,
                    BackupStorageZoneRefVO.zone_uuid.in_(zone_uuids),
                )
            )
