"""The SFTP backup storage contract: its create/update/reconnect/query APIs and inventory.
Everything type-independent (state, zones, delete, images) is the backup storage
service's (``services.backup_storage.messages``)."""

from __future__ import annotations

import posixpath
from enum import StrEnum
from typing import ClassVar, Literal

from pydantic import Field, field_validator

from zstackpy.api.messages import APICreateMessage, APIMessage, APIQueryMessage, APIReply, ApiSpec
from zstackpy.services.backup_storage.messages import BACKUP_STORAGE_TYPE, BackupStorageInventory

SFTP_BACKUP_STORAGE_SERVICE = "sftpBackupStorage"
SFTP_BACKUP_STORAGE_TYPE = "SftpBackupStorage"  # BackupStorageInventory.type
_PKG = "org.zstack.storage.backup.sftp"


class SftpBackupStorageErr(StrEnum):
    """Codes of the SFTP backup storage plugin (listed in docs/errors.md)."""

    DUPLICATE_HOSTNAME = "BS.2001"  # another SFTP backup storage uses that hostname


def _storage_path(value: str) -> str:
    """An absolute, normalised directory path: images go below it."""
    if not value.startswith("/"):
        raise ValueError("must be an absolute path on the backup storage machine")
    return posixpath.normpath(value)


class SftpBackupStorageInventory(BackupStorageInventory):
    """ZStack's SftpBackupStorageInventory: no password, no agent token, ever."""

    hostname: str
    username: str
    ssh_port: int


class SftpBackupStorageEvent(APIReply):
    inventory: SftpBackupStorageInventory | None = None


class APIAddSftpBackupStorageMsg(APICreateMessage):
    api_service: ClassVar[str] = SFTP_BACKUP_STORAGE_SERVICE
    api: ClassVar[ApiSpec | None] = ApiSpec(
        name="AddSftpBackupStorage",
        java_class=f"{_PKG}.APIAddSftpBackupStorageMsg",
        method="POST",
        path="/backup-storage/sftp",
        body_key="params",
        result_java_class=f"{_PKG}.APIAddSftpBackupStorageEvent",
        admin_only=True,
        creates=BACKUP_STORAGE_TYPE,
        summary="Add an SFTP backup storage: deploy its agent on the machine, connect, read "
        "its capacity (the storage path's file system)",
    )
    route_by: ClassVar[str | None] = "resource_uuid"
    name: str = Field(min_length=1, max_length=255)
    description: str | None = Field(None, max_length=2048)
    url: str = Field(min_length=1, max_length=1024, description="the storage path")
    hostname: str = Field(min_length=1, max_length=255, pattern=r"^[^\s/]+$")
    username: str = Field(min_length=1, max_length=255)
    password: str = Field(min_length=1, max_length=255)
    ssh_port: int = Field(22, ge=1, le=65535)
    type: Literal["SftpBackupStorage"] = "SftpBackupStorage"
    # ZStack imports the images it finds under the path; a new storage here starts empty
    # (accepted for compatibility, nothing to import).
    import_images: bool = False

    _check_url = field_validator("url")(_storage_path)


class APIUpdateSftpBackupStorageMsg(APIMessage):
    api_service: ClassVar[str] = SFTP_BACKUP_STORAGE_SERVICE
    api: ClassVar[ApiSpec | None] = ApiSpec(
        name="UpdateSftpBackupStorage",
        java_class=f"{_PKG}.APIUpdateSftpBackupStorageMsg",
        method="PUT",
        path="/backup-storage/sftp/{uuid}/actions",
        body_key="updateSftpBackupStorage",
        result_java_class=f"{_PKG}.APIUpdateSftpBackupStorageEvent",
        admin_only=True,
        summary="Change an SFTP backup storage's name, description, address or credentials "
        "(reconnect to use a new address or credentials)",
    )
    route_by: ClassVar[str | None] = "uuid"
    uuid: str
    name: str | None = Field(None, min_length=1, max_length=255)
    description: str | None = Field(None, max_length=2048)
    hostname: str | None = Field(None, min_length=1, max_length=255, pattern=r"^[^\s/]+$")
    username: str | None = Field(None, min_length=1, max_length=255)
    password: str | None = Field(None, min_length=1, max_length=255)
    ssh_port: int | None = Field(None, ge=1, le=65535)


class APIReconnectSftpBackupStorageMsg(APIMessage):
    api_service: ClassVar[str] = SFTP_BACKUP_STORAGE_SERVICE
    api: ClassVar[ApiSpec | None] = ApiSpec(
        name="ReconnectSftpBackupStorage",
        java_class=f"{_PKG}.APIReconnectSftpBackupStorageMsg",
        method="PUT",
        path="/backup-storage/sftp/{uuid}/actions",
        body_key="reconnectSftpBackupStorage",
        result_java_class=f"{_PKG}.APIReconnectSftpBackupStorageEvent",
        admin_only=True,
        summary="Redeploy and reconnect an SFTP backup storage's agent",
    )
    route_by: ClassVar[str | None] = "uuid"
    uuid: str


class APIQuerySftpBackupStorageMsg(APIQueryMessage):
    query_of: ClassVar[str] = "SftpBackupStorage"
    api: ClassVar[ApiSpec | None] = ApiSpec(
        name="QuerySftpBackupStorage",
        java_class=f"{_PKG}.APIQuerySftpBackupStorageMsg",
        method="GET",
        path="/backup-storage/sftp",
        is_async=False,
        result_java_class=f"{_PKG}.APIQuerySftpBackupStorageReply",
        summary="Query SFTP backup storage (with hostname, username, sshPort)",
    )
