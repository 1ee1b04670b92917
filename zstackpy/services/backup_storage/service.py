"""The backup storage service, whatever the type: update, state, reconnect, delete and
capacity here; zone attachment in zones.py, image files in files.py, the ping in ping.py.

Every change of one backup storage runs in its work queue (``backup_storage_queue``) on its
ring owner; type-specific work (agents) goes to the type's ``BackupStorageBackend``.
"""

from __future__ import annotations

from sqlalchemy import delete

from zstackpy.api.messages import AuthContext
from zstackpy.api.ownership import remove_resources
from zstackpy.core.context import NodeContext
from zstackpy.core.errors import SysErr, ZError
from zstackpy.core.service import handles
from zstackpy.services.backup_storage.files import ImageFiles
from zstackpy.services.backup_storage.messages import (
    APIChangeBackupStorageStateMsg,
    APIDeleteBackupStorageMsg,
    APIGetBackupStorageCapacityMsg,
    APIGetBackupStorageCapacityReply,
    APIReconnectBackupStorageMsg,
    APIUpdateBackupStorageMsg,
    BackupStorageEvent,
    BackupStorageInventory,
    BackupStorageStatus,
    ReconnectBackupStorageMsg,
    ReconnectBackupStorageReply,
    backup_storage_queue,
)
from zstackpy.services.backup_storage.models import BackupStorageVO, BackupStorageZoneRefVO
from zstackpy.services.backup_storage.ping import BackupStoragePinger
from zstackpy.services.backup_storage.zones import ZoneAttachment


class BackupStorageService(ZoneAttachment, ImageFiles):
    def __init__(self, ctx: NodeContext) -> None:
        super().__init__(ctx)
        self.pinger = BackupStoragePinger(ctx, self)

    async def start(self) -> None:
        self.pinger.start()

    async def stop(self) -> None:
        await self.pinger.stop()

    @handles(APIUpdateBackupStorageMsg)
    async def update(self, msg: APIUpdateBackupStorageMsg) -> BackupStorageEvent:
        return await self.ctx.queues.run(backup_storage_queue(msg.uuid), self._update, msg)

    async def _update(self, msg: APIUpdateBackupStorageMsg) -> BackupStorageEvent:
        # Column names, not wire names: messages serialize by alias by default.
        changes = msg.model_dump(include={"name", "description"}, exclude_none=True, by_alias=False)
        await self.update_fields(msg.uuid, changes)
        return await self.event(msg.uuid, msg.require_auth())

    @handles(APIChangeBackupStorageStateMsg)
    async def change_bs_state(self, msg: APIChangeBackupStorageStateMsg) -> BackupStorageEvent:
        inventory = await self.ctx.queues.run(
            backup_storage_queue(msg.uuid),
            self.change_state,
            msg.uuid,
            msg.state_event,
            msg.require_auth(),
        )
        return BackupStorageEvent(inventory=BackupStorageInventory.model_validate(inventory))

    # ----- connection -------------------------------------------------------------------

    @handles(APIReconnectBackupStorageMsg)
    async def reconnect_api(self, msg: APIReconnectBackupStorageMsg) -> BackupStorageEvent:
        key = backup_storage_queue(msg.uuid)
        await self.ctx.queues.run(key, self.reconnect, msg.uuid, "ReconnectBackupStorage")
        return await self.event(msg.uuid, msg.require_auth())

    @handles(ReconnectBackupStorageMsg)
    async def reconnect_internal(
        self, msg: ReconnectBackupStorageMsg
    ) -> ReconnectBackupStorageReply:
        key = backup_storage_queue(msg.uuid)
        await self.ctx.queues.run(key, self.reconnect, msg.uuid, msg.reason or "reconnect")
        async with self.ctx.db.session() as session:
            row = await self.require(session, msg.uuid)
        return ReconnectBackupStorageReply(
            inventory=BackupStorageInventory.model_validate(row, from_attributes=True)
        )

    async def reconnect(self, uuid: str, reason: str) -> None:
        """In the storage's queue: connect through its backend; Connected with the
        agent's capacity, or Disconnected and the cause raised."""
        spec = await self.spec(uuid)
        backend = self.backend_for(spec.type)
        await self.set_status(uuid, BackupStorageStatus.CONNECTING, reason)
        try:
            capacity = await backend.connect_backup_storage(spec)
        except ZError as exc:
            await self.set_status(uuid, BackupStorageStatus.DISCONNECTED, exc.description)
            raise
        await self.update_fields(
            uuid,
            {
                "status": BackupStorageStatus.CONNECTED.value,
                "total_capacity": capacity.total,
                "available_capacity": capacity.available,
            },
        )
        await self.announce(uuid)

    # ----- deletion ---------------------------------------------------------------------

    @handles(APIDeleteBackupStorageMsg)
    async def delete_api(self, msg: APIDeleteBackupStorageMsg) -> BackupStorageEvent:
        await self.ctx.queues.run(
            backup_storage_queue(msg.uuid),
            self.delete_with_children,
            msg.uuid,
            msg.delete_mode,
            msg.require_auth(),
        )
        return BackupStorageEvent()

    async def remove(self, uuids: list[str], auth: AuthContext | None) -> None:
        """The storage leaves its zones and goes; its type's row goes with it (ON DELETE
        CASCADE). The cascade already made the image service forget its image copies."""
        async with self.ctx.db.session() as session, session.begin():
            await session.execute(
                delete(BackupStorageZoneRefVO).where(
                    BackupStorageZoneRefVO.backup_storage_uuid.in_(uuids)
                )
            )
            await session.execute(delete(BackupStorageVO).where(BackupStorageVO.uuid.in_(uuids)))
            await remove_resources(session, uuids)
        for uuid in uuids:
            await self._publish(uuid, "deleted", auth, None)

    # ----- capacity ---------------------------------------------------------------------

    @handles(APIGetBackupStorageCapacityMsg)
    async def get_capacity(
        self, msg: APIGetBackupStorageCapacityMsg
    ) -> APIGetBackupStorageCapacityReply:
        if not (msg.all or msg.zone_uuids or msg.backup_storage_uuids):
            raise ZError(SysErr.INVALID_ARGUMENT, "give zoneUuids, backupStorageUuids, or all=true")
        uuids = [] if msg.all else msg.backup_storage_uuids
        zones = [] if msg.all else msg.zone_uuids
        found = await self.summaries(uuids, zones)
        return APIGetBackupStorageCapacityReply(
            total_capacity=sum(s.total_capacity for s in found),
            available_capacity=sum(s.available_capacity for s in found),
        )
