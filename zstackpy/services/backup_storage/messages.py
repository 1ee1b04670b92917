"""The backup storage service's contract: API messages of every backup storage type, the
inventory, and the internal messages the image service (and others) send it.

Type plugins (SFTP) add their own create API and implement ``BackupStorageBackend``
(extensions.py); everything else about a backup storage goes through this service, in the
backup storage's work queue (``QueueKey("backup-storage", uuid)``) on its ring owner.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import ClassVar, Literal

from pydantic import BaseModel, Field

from zstackpy.api.messages import (
    APIMessage,
    APIQueryMessage,
    APIReply,
    ApiSpec,
    Inventory,
)
from zstackpy.core.bus.message import NeedReplyMessage, Reply
from zstackpy.core.workqueue import QueueKey

BACKUP_STORAGE_SERVICE = "backupStorage"
BACKUP_STORAGE_TYPE = "BackupStorageVO"  # the resource type (ResourceVO, tags)
_PKG = "org.zstack.header.storage.backup"


def backup_storage_queue(uuid: str) -> QueueKey:
    """The work queue every change of one backup storage runs in, whatever service (the
    generic one or a type plugin's) runs it. Never await another backup storage message
    while holding it: the queue is not re-entrant."""
    return QueueKey("backup-storage", uuid)


class BackupStorageErr(StrEnum):
    """Codes of the backup storage domain (listed in docs/errors.md)."""

    NOT_CONNECTED = "BS.1001"  # the backup storage is not Connected
    DISABLED = "BS.1002"  # the backup storage is Disabled: it takes no new images
    NOT_ENOUGH_CAPACITY = "BS.1003"  # not enough available capacity for the image
    ALREADY_ATTACHED = "BS.1004"  # already attached to that zone
    NOT_ATTACHED = "BS.1005"  # not attached to that zone
    NO_BACKEND = "BS.1006"  # no installed plugin serves this backup storage type


class BackupStorageStatus(StrEnum):
    CONNECTING = "Connecting"
    CONNECTED = "Connected"
    DISCONNECTED = "Disconnected"


class BackupStorageState(StrEnum):
    ENABLED = "Enabled"
    DISABLED = "Disabled"


class BackupStorageInventory(Inventory):
    uuid: str
    name: str
    description: str | None = None
    url: str
    type: str
    state: str
    status: str
    total_capacity: int  # bytes
    available_capacity: int  # bytes
    attached_zone_uuids: list[str] = Field(default_factory=list)
    create_date: datetime
    last_op_date: datetime


class BackupStorageZoneRefInventory(Inventory):
    """A backup storage's attachment to a zone (queryable as a join, hidden from clients)."""

    id: int
    backup_storage_uuid: str
    zone_uuid: str
    create_date: datetime
    last_op_date: datetime


class BackupStorageEvent(APIReply):
    inventory: BackupStorageInventory | None = None


# ----- API ----------------------------------------------------------------------------------


class APIQueryBackupStorageMsg(APIQueryMessage):
    query_of: ClassVar[str] = "BackupStorage"
    api: ClassVar[ApiSpec | None] = ApiSpec(
        name="QueryBackupStorage",
        java_class=f"{_PKG}.APIQueryBackupStorageMsg",
        method="GET",
        path="/backup-storage",
        is_async=False,
        result_java_class=f"{_PKG}.APIQueryBackupStorageReply",
        summary="Query backup storage of every type (joins: zone, image)",
    )


class APIUpdateBackupStorageMsg(APIMessage):
    api_service: ClassVar[str] = BACKUP_STORAGE_SERVICE
    api: ClassVar[ApiSpec | None] = ApiSpec(
        name="UpdateBackupStorage",
        java_class=f"{_PKG}.APIUpdateBackupStorageMsg",
        method="PUT",
        path="/backup-storage/{uuid}/actions",
        body_key="updateBackupStorage",
        result_java_class=f"{_PKG}.APIUpdateBackupStorageEvent",
        admin_only=True,
        summary="Change a backup storage's name or description",
    )
    route_by: ClassVar[str | None] = "uuid"
    uuid: str
    name: str | None = Field(None, min_length=1, max_length=255)
    description: str | None = Field(None, max_length=2048)


class APIChangeBackupStorageStateMsg(APIMessage):
    api_service: ClassVar[str] = BACKUP_STORAGE_SERVICE
    api: ClassVar[ApiSpec | None] = ApiSpec(
        name="ChangeBackupStorageState",
        java_class=f"{_PKG}.APIChangeBackupStorageStateMsg",
        method="PUT",
        path="/backup-storage/{uuid}/actions",
        body_key="changeBackupStorageState",
        result_java_class=f"{_PKG}.APIChangeBackupStorageStateEvent",
        admin_only=True,
        summary="Enable or disable a backup storage (a disabled one takes no new images)",
    )
    route_by: ClassVar[str | None] = "uuid"
    uuid: str
    state_event: Literal["enable", "disable"]


class APIReconnectBackupStorageMsg(APIMessage):
    api_service: ClassVar[str] = BACKUP_STORAGE_SERVICE
    api: ClassVar[ApiSpec | None] = ApiSpec(
        name="ReconnectBackupStorage",
        java_class=f"{_PKG}.APIReconnectBackupStorageMsg",
        method="PUT",
        path="/backup-storage/{uuid}/actions",
        body_key="reconnectBackupStorage",
        result_java_class=f"{_PKG}.APIReconnectBackupStorageEvent",
        admin_only=True,
        summary="Connect to a backup storage's agent again and re-read its capacity",
    )
    route_by: ClassVar[str | None] = "uuid"
    uuid: str


class APIDeleteBackupStorageMsg(APIMessage):
    api_service: ClassVar[str] = BACKUP_STORAGE_SERVICE
    api: ClassVar[ApiSpec | None] = ApiSpec(
        name="DeleteBackupStorage",
        java_class=f"{_PKG}.APIDeleteBackupStorageMsg",
        method="DELETE",
        path="/backup-storage/{uuid}",
        result_java_class=f"{_PKG}.APIDeleteBackupStorageEvent",
        admin_only=True,
        summary="Delete a backup storage: it leaves its zones, its image copies are "
        "forgotten, and images left on no backup storage are deleted",
    )
    route_by: ClassVar[str | None] = "uuid"
    uuid: str
    delete_mode: Literal["Permissive", "Enforcing"] = "Permissive"


class APIAttachBackupStorageToZoneMsg(APIMessage):
    api_service: ClassVar[str] = BACKUP_STORAGE_SERVICE
    api: ClassVar[ApiSpec | None] = ApiSpec(
        name="AttachBackupStorageToZone",
        java_class=f"{_PKG}.APIAttachBackupStorageToZoneMsg",
        method="POST",
        path="/zones/{zoneUuid}/backup-storage/{backupStorageUuid}",
        body_key="params",
        result_java_class=f"{_PKG}.APIAttachBackupStorageToZoneEvent",
        admin_only=True,
        summary="Let the hosts of a zone use a backup storage's images",
    )
    route_by: ClassVar[str | None] = "backup_storage_uuid"
    zone_uuid: str
    backup_storage_uuid: str


class APIDetachBackupStorageFromZoneMsg(APIMessage):
    api_service: ClassVar[str] = BACKUP_STORAGE_SERVICE
    api: ClassVar[ApiSpec | None] = ApiSpec(
        name="DetachBackupStorageFromZone",
        java_class=f"{_PKG}.APIDetachBackupStorageFromZoneMsg",
        method="DELETE",
        path="/zones/{zoneUuid}/backup-storage/{backupStorageUuid}",
        result_java_class=f"{_PKG}.APIDetachBackupStorageFromZoneEvent",
        admin_only=True,
        summary="Stop serving a zone from a backup storage",
    )
    route_by: ClassVar[str | None] = "backup_storage_uuid"
    zone_uuid: str
    backup_storage_uuid: str


class APIGetBackupStorageCapacityMsg(APIMessage):
    api_service: ClassVar[str] = BACKUP_STORAGE_SERVICE
    api: ClassVar[ApiSpec | None] = ApiSpec(
        name="GetBackupStorageCapacity",
        java_class=f"{_PKG}.APIGetBackupStorageCapacityMsg",
        method="GET",
        path="/backup-storage/capacities",
        is_async=False,
        result_java_class=f"{_PKG}.APIGetBackupStorageCapacityReply",
        admin_only=True,
        summary="Total and available capacity of some backup storage, of the backup "
        "storage attached to some zones, or (all=true) of every backup storage",
    )
    zone_uuids: list[str] = Field(default_factory=list)
    backup_storage_uuids: list[str] = Field(default_factory=list)
    all: bool = False


class APIGetBackupStorageCapacityReply(APIReply):
    total_capacity: int = 0
    available_capacity: int = 0


# ----- internal messages --------------------------------------------------------------------


class BackupStorageSummary(BaseModel):
    """What other services need to know about a backup storage to use it."""

    uuid: str
    name: str
    type: str
    url: str
    state: str
    status: str
    total_capacity: int
    available_capacity: int
    attached_zone_uuids: list[str] = Field(default_factory=list)


class ListBackupStorageMsg(NeedReplyMessage):
    """Backup storage by uuid and/or by attached zone (both empty: all); any node answers
    (reads only). ``connected_only`` keeps Connected ones, ``enabled_only`` Enabled ones."""

    service: ClassVar[str] = BACKUP_STORAGE_SERVICE
    uuids: list[str] = Field(default_factory=list)
    zone_uuids: list[str] = Field(default_factory=list)
    connected_only: bool = False
    enabled_only: bool = False


class ListBackupStorageReply(Reply):
    backup_storages: list[BackupStorageSummary] = Field(default_factory=list)


class DownloadImageToBackupStorageMsg(NeedReplyMessage):
    """Download an image from ``url`` onto a backup storage and reserve its actual size
    there (on the storage's owner node). Refuses with BS.1001/BS.1002 unless the storage
    is Connected and Enabled, BS.1003 when the downloaded file does not fit (the file is
    removed again); agent errors (AGENT.*) come back as they are."""

    service: ClassVar[str] = BACKUP_STORAGE_SERVICE
    route_by: ClassVar[str | None] = "backup_storage_uuid"
    backup_storage_uuid: str
    image_uuid: str
    url: str
    format: str
    timeout: float = 3600.0


class DownloadImageToBackupStorageReply(Reply):
    install_path: str = ""
    size: int = 0  # virtual size, bytes
    actual_size: int = 0  # bytes the file takes on the storage
    md5_sum: str | None = None
    format: str | None = None


class DeleteImageFromBackupStorageMsg(NeedReplyMessage):
    """Delete an image's file from a backup storage and give back ``actual_size`` bytes
    of its capacity. BS.1001 when the storage is not Connected (nothing is returned)."""

    service: ClassVar[str] = BACKUP_STORAGE_SERVICE
    route_by: ClassVar[str | None] = "backup_storage_uuid"
    backup_storage_uuid: str
    install_path: str
    actual_size: int = Field(0, ge=0)


class ReconnectBackupStorageMsg(NeedReplyMessage):
    """Reconnect a backup storage on its owner node, in its queue (the ping tracker and
    the APIs use it). A failed reconnect leaves it Disconnected and answers the cause."""

    service: ClassVar[str] = BACKUP_STORAGE_SERVICE
    route_by: ClassVar[str | None] = "uuid"
    uuid: str
    reason: str = ""


class ReconnectBackupStorageReply(Reply):
    inventory: BackupStorageInventory | None = None


class DetachZonesFromBackupStorageMsg(NeedReplyMessage):
    """Internal: detach a backup storage from zones being deleted (the zone cascade), in
    the storage's queue on its owner. Zones it is not attached to are ignored."""

    service: ClassVar[str] = BACKUP_STORAGE_SERVICE
    route_by: ClassVar[str | None] = "backup_storage_uuid"
    backup_storage_uuid: str
    zone_uuids: list[str]
