"""SFTP backup storage: its own APIs (add, update, reconnect) and the backend the backup
storage service uses for it (connect, ping, download, delete over the 7171 agent).

Changes run in the storage's queue (``backup_storage_queue``), shared with the generic
backup storage service, so an add, an update and a reconnect never interleave.
"""

from __future__ import annotations

import secrets
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from zstackpy.api.ownership import rename_resource
from zstackpy.core.agent import SFTP_BACKUP_STORAGE_AGENT_PORT, AgentEndpoint
from zstackpy.core.errors import SysErr, ZError
from zstackpy.core.service import handles
from zstackpy.services.backup_storage.extensions import (
    BackupStorageCapacity,
    BackupStorageSpec,
    DownloadedImage,
    ImageDownload,
)
from zstackpy.services.backup_storage.messages import (
    BACKUP_STORAGE_TYPE,
    ReconnectBackupStorageMsg,
    ReconnectBackupStorageReply,
    backup_storage_queue,
)
from zstackpy.services.resource_service import ResourceService
from zstackpy.services.sftp_backup_storage.flows import (
    NewSftpBackupStorage,
    SftpConnectCtx,
    duplicate_hostname,
)
from zstackpy.services.sftp_backup_storage.messages import (
    SFTP_BACKUP_STORAGE_SERVICE,
    SFTP_BACKUP_STORAGE_TYPE,
    APIAddSftpBackupStorageMsg,
    APIReconnectSftpBackupStorageMsg,
    APIUpdateSftpBackupStorageMsg,
    SftpBackupStorageEvent,
    SftpBackupStorageInventory,
)
from zstackpy.services.sftp_backup_storage.models import SftpBackupStorageVO

_CONNECTION_FIELDS = ("hostname", "username", "password", "ssh_port")


class SftpBackupStorageService(ResourceService):
    name = SFTP_BACKUP_STORAGE_SERVICE
    model = SftpBackupStorageVO
    inventory = SftpBackupStorageInventory
    resource_type = BACKUP_STORAGE_TYPE
    noun = "SFTP backup storage"

    async def require(self, session: AsyncSession, uuid: str) -> Any:
        row = await session.get(
            SftpBackupStorageVO, uuid, options=[selectinload(SftpBackupStorageVO.zone_refs)]
        )
        if row is None:
            raise ZError(
                SysErr.RESOURCE_NOT_FOUND, f"no SFTP backup storage with uuid {uuid}", uuid=uuid
            )
        return row

    # ----- API --------------------------------------------------------------------------

    @handles(APIAddSftpBackupStorageMsg)
    async def add(self, msg: APIAddSftpBackupStorageMsg) -> SftpBackupStorageEvent:
        assert msg.resource_uuid is not None  # the portal gives every create its UUID
        key = backup_storage_queue(msg.resource_uuid)
        return await self.ctx.queues.run(key, self._add, msg)

    async def _add(self, msg: APIAddSftpBackupStorageMsg) -> SftpBackupStorageEvent:
        uuid, auth = msg.resource_uuid, msg.require_auth()
        assert uuid is not None
        async with self.ctx.db.session() as session:
            await self.refuse_duplicate(session, uuid)
            await self._refuse_duplicate_hostname(session, msg.hostname, uuid)
        ctx = SftpConnectCtx(
            node=self.ctx,
            uuid=uuid,
            hostname=msg.hostname,
            username=msg.username,
            password=msg.password,
            ssh_port=msg.ssh_port,
            # A fresh token per storage, installed by the deployment; never shown.
            token=secrets.token_urlsafe(32),
            storage_path=msg.url,
            new=NewSftpBackupStorage(name=msg.name, description=msg.description, auth=auth),
        )
        await self.ctx.flows.run("add-sftp-backup-storage", ctx)
        return SftpBackupStorageEvent(inventory=await self._answer(uuid, "created", auth))

    async def _refuse_duplicate_hostname(
        self, session: AsyncSession, hostname: str, uuid: str
    ) -> None:
        other = await session.scalar(
            select(SftpBackupStorageVO.uuid).where(
                SftpBackupStorageVO.hostname == hostname, SftpBackupStorageVO.uuid != uuid
            )
        )
        if other is not None:
            raise duplicate_hostname(hostname, other)

    @handles(APIUpdateSftpBackupStorageMsg)
    async def update(self, msg: APIUpdateSftpBackupStorageMsg) -> SftpBackupStorageEvent:
        return await self.ctx.queues.run(backup_storage_queue(msg.uuid), self._update, msg)

    async def _update(self, msg: APIUpdateSftpBackupStorageMsg) -> SftpBackupStorageEvent:
        changes = msg.model_dump(
            include={"name", "description", *_CONNECTION_FIELDS},
            exclude_none=True,
            by_alias=False,
        )
        # Through the unit of work: the columns live in two tables, which a bulk UPDATE
        # of the joined class cannot change together on every database.
        async with self.ctx.db.session() as session, session.begin():
            row = await self.require(session, msg.uuid)
            if "hostname" in changes:
                await self._refuse_duplicate_hostname(session, changes["hostname"], msg.uuid)
            for column, value in changes.items():
                setattr(row, column, value)
            if "name" in changes:
                await rename_resource(session, msg.uuid, changes["name"])
        auth = msg.require_auth()
        return SftpBackupStorageEvent(inventory=await self._answer(msg.uuid, "updated", auth))

    @handles(APIReconnectSftpBackupStorageMsg)
    async def reconnect(self, msg: APIReconnectSftpBackupStorageMsg) -> SftpBackupStorageEvent:
        # The backup storage service reconnects in the storage's queue; holding it here
        # would deadlock, so this handler only forwards and answers.
        await self.ctx.bus.request(
            ReconnectBackupStorageMsg(uuid=msg.uuid, reason="ReconnectSftpBackupStorage"),
            ReconnectBackupStorageReply,
        )
        auth = msg.require_auth()
        return SftpBackupStorageEvent(inventory=await self._answer(msg.uuid, "updated", auth))

    async def _answer(self, uuid: str, change: Any, auth: Any) -> SftpBackupStorageInventory:
        inventory = await self.answer(uuid, change, auth)
        return SftpBackupStorageInventory.model_validate(inventory)

    # ----- BackupStorageBackend ---------------------------------------------------------

    def serves_type(self, backup_storage_type: str) -> bool:
        return backup_storage_type == SFTP_BACKUP_STORAGE_TYPE

    async def connect_backup_storage(self, bs: BackupStorageSpec) -> BackupStorageCapacity:
        async with self.ctx.db.session() as session:
            row = await self.require(session, bs.uuid)
        ctx = SftpConnectCtx(
            node=self.ctx,
            uuid=row.uuid,
            hostname=row.hostname,
            username=row.username,
            password=row.password,
            ssh_port=row.ssh_port,
            token=row.agent_token,
            storage_path=row.url,
        )
        await self.ctx.flows.run("connect-sftp-backup-storage", ctx)
        assert ctx.capacity is not None  # connect-sftp-agent sets it or raises
        return ctx.capacity

    async def ping_backup_storage(self, bs: BackupStorageSpec, timeout: float) -> None:  # noqa: ASYNC109 -- the ping period bounds it
        endpoint = await self._endpoint(bs.uuid)
        await self.ctx.agents.call(
            endpoint, "/sftpbackupstorage/ping", {"uuid": bs.uuid}, timeout=timeout
        )

    async def download_image(self, bs: BackupStorageSpec, image: ImageDownload) -> DownloadedImage:
        endpoint = await self._endpoint(bs.uuid)
        install_path = f"{bs.url.rstrip('/')}/images/{image.image_uuid}.{image.format}"
        answer = await self.ctx.agents.call(
            endpoint,
            "/sftpbackupstorage/download",
            {
                "url": image.url,
                "installPath": install_path,
                "imageUuid": image.image_uuid,
                "timeout": int(image.timeout),
            },
            timeout=image.timeout,
        )
        size, actual = answer.get("size"), answer.get("actualSize")
        md5, fmt = answer.get("md5Sum"), answer.get("format")
        return DownloadedImage(
            install_path=install_path,
            size=size if isinstance(size, int) else 0,
            actual_size=actual if isinstance(actual, int) else 0,
            md5_sum=md5 if isinstance(md5, str) else None,
            format=fmt if isinstance(fmt, str) else None,
        )

    async def delete_image(self, bs: BackupStorageSpec, install_path: str) -> None:
        endpoint = await self._endpoint(bs.uuid)
        await self.ctx.agents.call(
            endpoint, "/sftpbackupstorage/delete", {"installUrl": install_path}
        )

    async def _endpoint(self, uuid: str) -> AgentEndpoint:
        async with self.ctx.db.session() as session:
            row = (
                await session.execute(
                    select(SftpBackupStorageVO.hostname, SftpBackupStorageVO.agent_token).where(
                        SftpBackupStorageVO.uuid == uuid
                    )
                )
            ).one_or_none()
        if row is None:
            raise ZError(
                SysErr.RESOURCE_NOT_FOUND, f"no SFTP backup storage with uuid {uuid}", uuid=uuid
            )
        return AgentEndpoint(uuid, row.hostname, SFTP_BACKUP_STORAGE_AGENT_PORT, row.agent_token)
