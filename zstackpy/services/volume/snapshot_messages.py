"""The volume snapshot service's contract: its API messages, inventory, and the message
that forwards a snapshot operation to its volume's owner."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar, Literal

from pydantic import Field

from zstackpy.api.messages import (
    APICreateMessage,
    APIMessage,
    APIQueryMessage,
    APIReply,
    ApiSpec,
    Inventory,
)
from zstackpy.core.bus.message import NeedReplyMessage

VOLUME_SNAPSHOT_SERVICE = "volumeSnapshot"
VOLUME_SNAPSHOT_RESOURCE_TYPE = "VolumeSnapshotVO"
_VOLUME_PKG = "org.zstack.header.volume"
_SNAPSHOT_PKG = "org.zstack.header.storage.snapshot"


class VolumeSnapshotInventory(Inventory):
    uuid: str
    name: str
    description: str | None = None
    type: str
    volume_uuid: str
    tree_uuid: str
    parent_uuid: str | None = None
    primary_storage_uuid: str
    primary_storage_install_path: str
    volume_type: str
    format: str
    latest: bool
    size: int
    distance: int
    state: str
    status: str
    create_date: datetime
    last_op_date: datetime
    backup_storage_refs: list[dict[str, object]] = Field(default_factory=list)
    group_uuid: str | None = None


class VolumeSnapshotEvent(APIReply):
    inventory: VolumeSnapshotInventory | None = None


# ----- snapshot API --------------------------------------------------------------------


class APICreateVolumeSnapshotMsg(APICreateMessage):
    api_service: ClassVar[str] = VOLUME_SNAPSHOT_SERVICE
    api: ClassVar[ApiSpec | None] = ApiSpec(
        name="CreateVolumeSnapshot",
        java_class=f"{_VOLUME_PKG}.APICreateVolumeSnapshotMsg",
        method="POST",
        path="/volumes/{volumeUuid}/volume-snapshots",
        body_key="params",
        result_java_class=f"{_VOLUME_PKG}.APICreateVolumeSnapshotEvent",
        creates=VOLUME_SNAPSHOT_RESOURCE_TYPE,
        summary="Take a snapshot of a Ready volume (live on its VM's host when the VM runs)",
    )
    # In the volume's queue on its owner: a snapshot changes the volume's file.
    route_by: ClassVar[str | None] = "volume_uuid"
    volume_uuid: str
    name: str = Field(min_length=1, max_length=255)
    description: str | None = Field(None, max_length=2048)


class APIUpdateVolumeSnapshotMsg(APIMessage):
    api_service: ClassVar[str] = VOLUME_SNAPSHOT_SERVICE
    api: ClassVar[ApiSpec | None] = ApiSpec(
        name="UpdateVolumeSnapshot",
        java_class=f"{_SNAPSHOT_PKG}.APIUpdateVolumeSnapshotMsg",
        method="PUT",
        path="/volume-snapshots/{uuid}/actions",
        body_key="updateVolumeSnapshot",
        result_java_class=f"{_SNAPSHOT_PKG}.APIUpdateVolumeSnapshotEvent",
        summary="Change a snapshot's name or description",
    )
    route_by: ClassVar[str | None] = "uuid"
    uuid: str
    name: str | None = Field(None, min_length=1, max_length=255)
    description: str | None = Field(None, max_length=2048)


class APIDeleteVolumeSnapshotMsg(APIMessage):
    api_service: ClassVar[str] = VOLUME_SNAPSHOT_SERVICE
    api: ClassVar[ApiSpec | None] = ApiSpec(
        name="DeleteVolumeSnapshot",
        java_class=f"{_SNAPSHOT_PKG}.APIDeleteVolumeSnapshotMsg",
        method="DELETE",
        path="/volume-snapshots/{uuid}",
        result_java_class=f"{_SNAPSHOT_PKG}.APIDeleteVolumeSnapshotEvent",
        summary="Delete a snapshot and its descendants, giving their capacity back",
    )
    route_by: ClassVar[str | None] = "uuid"
    uuid: str
    delete_mode: Literal["Permissive", "Enforcing"] = "Permissive"


class APIRevertVolumeFromSnapshotMsg(APIMessage):
    api_service: ClassVar[str] = VOLUME_SNAPSHOT_SERVICE
    api: ClassVar[ApiSpec | None] = ApiSpec(
        name="RevertVolumeFromSnapshot",
        java_class=f"{_SNAPSHOT_PKG}.APIRevertVolumeFromSnapshotMsg",
        method="PUT",
        path="/volume-snapshots/{uuid}/actions",
        body_key="revertVolumeFromSnapshot",
        result_java_class=f"{_SNAPSHOT_PKG}.APIRevertVolumeFromSnapshotEvent",
        summary="Bring a volume back to a snapshot (its VM Stopped, or the volume detached)",
    )
    route_by: ClassVar[str | None] = "uuid"
    uuid: str


class APIQueryVolumeSnapshotMsg(APIQueryMessage):
    query_of: ClassVar[str] = "VolumeSnapshot"
    api: ClassVar[ApiSpec | None] = ApiSpec(
        name="QueryVolumeSnapshot",
        java_class=f"{_SNAPSHOT_PKG}.APIQueryVolumeSnapshotMsg",
        method="GET",
        path="/volume-snapshots",
        is_async=False,
        result_java_class=f"{_SNAPSHOT_PKG}.APIQueryVolumeSnapshotReply",
        summary="Query volume snapshots",
    )


class VolumeSnapshotActionMsg(NeedReplyMessage):
    """A snapshot API forwarded to its volume's owner, to run in the volume's queue."""

    service: ClassVar[str] = VOLUME_SNAPSHOT_SERVICE
    route_by: ClassVar[str | None] = "volume_uuid"
    volume_uuid: str
    snapshot_uuid: str
    action: Literal["revert", "delete"]
