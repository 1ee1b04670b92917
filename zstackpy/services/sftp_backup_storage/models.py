"""The SftpBackupStorageVO table: the SFTP-specific columns of a backup storage, joined to
BackupStorageVO on ``uuid`` (ZStack's SftpBackupStorageVO extends BackupStorageVO)."""

from __future__ import annotations

from sqlalchemy import ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from zstackpy.services.backup_storage.models import BackupStorageVO


class SftpBackupStorageVO(BackupStorageVO):
    __tablename__ = "SftpBackupStorageVO"

    # ON DELETE CASCADE: the generic service deletes the BackupStorageVO row, whatever
    # the type, and the type's row goes with it.
    uuid: Mapped[str] = mapped_column(
        String(32), ForeignKey("BackupStorageVO.uuid", ondelete="CASCADE"), primary_key=True
    )
    # The machine's management address; in simulated mode only a label. One backup storage
    # per machine: two would share (and double count) one disk.
    hostname: Mapped[str] = mapped_column(String(255), unique=True)
    username: Mapped[str] = mapped_column(String(255))
    # Kept to redeploy the agent on reconnect; never shown by any API. TODO: encrypt at
    # rest (the host password has the same need) once the node has a key store.
    password: Mapped[str] = mapped_column(String(255))
    ssh_port: Mapped[int] = mapped_column(Integer, default=22)
    # The agent's bearer token (secrets.token_urlsafe(32)); never in inventories or logs.
    agent_token: Mapped[str] = mapped_column(String(64))
