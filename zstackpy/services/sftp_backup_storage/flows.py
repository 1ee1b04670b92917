"""Flows of the SFTP backup storage chains (``flows/sftp-backup-storage.yaml``):

``add-sftp-backup-storage``: record the storage (Connecting), connect it, mark it
Connected; any failure removes every row again. ``connect-sftp-backup-storage`` (also the
reconnect): deploy the agent with the storage's token (in simulated mode the simulator
checks the credentials), then ``/sftpbackupstorage/connect`` answers the capacity.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, update
from sqlalchemy.exc import IntegrityError

from zstackpy.api.messages import AuthContext
from zstackpy.api.ownership import add_resource, remove_resources
from zstackpy.core.agent import SFTP_BACKUP_STORAGE_AGENT_PORT, AgentEndpoint
from zstackpy.core.agent.driver import SFTP_BACKUP_STORAGE_AGENT
from zstackpy.core.context import NodeContext
from zstackpy.core.errors import ZError
from zstackpy.core.flow import Flow
from zstackpy.services.backup_storage.extensions import BackupStorageCapacity
from zstackpy.services.backup_storage.messages import BACKUP_STORAGE_TYPE, BackupStorageStatus
from zstackpy.services.backup_storage.models import BackupStorageVO
from zstackpy.services.sftp_backup_storage.messages import (
    SFTP_BACKUP_STORAGE_TYPE,
    SftpBackupStorageErr,
)
from zstackpy.services.sftp_backup_storage.models import SftpBackupStorageVO

CONNECT_TIMEOUT_S = 60.0


@dataclass
class NewSftpBackupStorage:
    """What an add records besides the connection fields."""

    name: str
    description: str | None
    auth: AuthContext


@dataclass
class SftpConnectCtx:
    """The context of both chains. ``new`` is set for an add only."""

    node: NodeContext
    uuid: str
    hostname: str
    username: str
    password: str = field(repr=False)  # never in logs or traces
    ssh_port: int
    token: str = field(repr=False)
    storage_path: str
    new: NewSftpBackupStorage | None = None
    recorded: bool = False
    capacity: BackupStorageCapacity | None = None

    @property
    def endpoint(self) -> AgentEndpoint:
        return AgentEndpoint(self.uuid, self.hostname, SFTP_BACKUP_STORAGE_AGENT_PORT, self.token)


class RecordSftpBackupStorage(Flow[SftpConnectCtx]):
    async def run(self, ctx: SftpConnectCtx) -> None:
        new = ctx.new
        assert new is not None  # only the add chain has this step
        try:
            await self._insert(ctx, new)
        except IntegrityError:
            # Another node added the same hostname between the check and this insert.
            raise duplicate_hostname(ctx.hostname) from None
        ctx.recorded = True

    async def _insert(self, ctx: SftpConnectCtx, new: NewSftpBackupStorage) -> None:
        async with ctx.node.db.session() as session, session.begin():
            session.add(
                SftpBackupStorageVO(
                    uuid=ctx.uuid,
                    name=new.name,
                    description=new.description,
                    url=ctx.storage_path,
                    type=SFTP_BACKUP_STORAGE_TYPE,
                    state="Enabled",
                    status=BackupStorageStatus.CONNECTING.value,
                    total_capacity=0,
                    available_capacity=0,
                    hostname=ctx.hostname,
                    username=ctx.username,
                    password=ctx.password,
                    ssh_port=ctx.ssh_port,
                    agent_token=ctx.token,
                )
            )
            add_resource(
                session,
                uuid=ctx.uuid,
                resource_type=BACKUP_STORAGE_TYPE,
                name=new.name,
                auth=new.auth,
            )

    async def rollback(self, ctx: SftpConnectCtx) -> None:
        if not ctx.recorded:
            return
        async with ctx.node.db.session() as session, session.begin():
            # The SftpBackupStorageVO row goes with it (ON DELETE CASCADE).
            await session.execute(delete(BackupStorageVO).where(BackupStorageVO.uuid == ctx.uuid))
            await remove_resources(session, [ctx.uuid])


class DeploySftpAgent(Flow[SftpConnectCtx]):
    async def run(self, ctx: SftpConnectCtx) -> None:
        await ctx.node.agents.deploy(
            ctx.endpoint,
            username=ctx.username,
            password=ctx.password,
            ssh_port=ctx.ssh_port,
            kind=SFTP_BACKUP_STORAGE_AGENT,
        )


class ConnectSftpAgent(Flow[SftpConnectCtx]):
    async def run(self, ctx: SftpConnectCtx) -> None:
        answer = await ctx.node.agents.call(
            ctx.endpoint,
            "/sftpbackupstorage/connect",
            {"storagePath": ctx.storage_path, "uuid": ctx.uuid},
            timeout=CONNECT_TIMEOUT_S,
        )
        ctx.capacity = capacity_of(answer)


class MarkSftpBackupStorageConnected(Flow[SftpConnectCtx]):
    async def run(self, ctx: SftpConnectCtx) -> None:
        capacity = ctx.capacity
        assert capacity is not None  # connect-sftp-agent ran before
        async with ctx.node.db.session() as session, session.begin():
            await session.execute(
                update(BackupStorageVO)
                .where(BackupStorageVO.uuid == ctx.uuid)
                .values(
                    status=BackupStorageStatus.CONNECTED.value,
                    total_capacity=capacity.total,
                    available_capacity=capacity.available,
                )
            )


def duplicate_hostname(hostname: str, other: str | None = None) -> ZError:
    """BS.2001; ``other`` names the storage already there when known."""
    details: dict[str, Any] = {"hostname": hostname}
    if other is not None:
        details["backupStorageUuid"] = other
    return ZError(
        SftpBackupStorageErr.DUPLICATE_HOSTNAME,
        f"an SFTP backup storage on {hostname} exists already: one machine serves one "
        "backup storage",
        **details,
    )


def capacity_of(answer: dict[str, object]) -> BackupStorageCapacity:
    """The capacity in an agent answer; 0 for a field the agent left out."""
    total, available = answer.get("totalCapacity"), answer.get("availableCapacity")
    return BackupStorageCapacity(
        total=total if isinstance(total, int) else 0,
        available=available if isinstance(available, int) else 0,
    )


SFTP_FLOWS = {
    "record-sftp-backup-storage": RecordSftpBackupStorage,
    "deploy-sftp-agent": DeploySftpAgent,
    "connect-sftp-agent": ConnectSftpAgent,
    "mark-sftp-backup-storage-connected": MarkSftpBackupStorageConnected,
}
