"""The volume service's contract: the internal messages the VM service sends it (first
part, the lead's), then the API messages, inventories and internal additions of the
volume service (volumes, data volumes, snapshots)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, ClassVar, Literal, Self

from pydantic import BaseModel, Field, model_validator

from zstackpy.api.messages import (
    APICreateMessage,
    APIMessage,
    APIQueryMessage,
    APIReply,
    ApiSpec,
    Inventory,
)
from zstackpy.core.bus.message import NeedReplyMessage, Reply
from zstackpy.services.image.messages import ImageInventory

VOLUME_SERVICE = "volume"
VOLUME_RESOURCE_TYPE = "VolumeVO"


class VolumeErr(StrEnum):
    """Codes of the volume domain (listed in docs/errors.md)."""

    WRONG_STATE = "VOLUME.1001"  # e.g. attach a volume that is attached, delete a root volume
    NO_IMAGE_SOURCE = "VOLUME.1002"  # no Connected backup storage holds the image Ready
    INVALID_SIZE = "VOLUME.1003"  # no size (diskOfferingUuid or diskSize), or an ISO root without
    UNSUPPORTED_STORAGE = "VOLUME.1004"  # a primary storage type volumes cannot live on
    NOT_ATTACHED = "VOLUME.1005"  # detach a volume that is not attached (to that VM)
    VM_NOT_STOPPED = "VOLUME.1006"  # revert (or merge) while the volume's VM is not Stopped
    NOT_DELETED = "VOLUME.1007"  # expunge/recover of a volume that is not Deleted
    UNREACHABLE_STORAGE = "VOLUME.1008"  # the VM's host cannot reach the volume's storage
    DISK_OFFERING_DISABLED = "VOLUME.1009"  # a data volume from a Disabled disk offering
    NO_HOST = "VOLUME.1010"  # no Connected host can run the storage command


class VolumeType(StrEnum):
    ROOT = "Root"
    DATA = "Data"


class VolumeStatus(StrEnum):
    CREATING = "Creating"
    READY = "Ready"
    NOT_INSTANTIATED = "NotInstantiated"
    DELETED = "Deleted"


class VolumeState(StrEnum):
    ENABLED = "Enabled"
    DISABLED = "Disabled"


class VolumeView(BaseModel):
    """What the VM service needs to know of a volume to boot or attach it (ZStack's
    VolumeTO): where it is and how the hypervisor reaches it."""

    uuid: str
    type: Literal["Root", "Data"]
    vm_instance_uuid: str | None
    primary_storage_uuid: str
    host_uuid: str | None  # host-local storage: the host whose disk holds it
    install_path: str
    format: str  # qcow2 / raw
    size: int
    device_id: int | None


class CreateRootVolumeMsg(NeedReplyMessage):
    """Create a VM's root volume from an image on a primary storage the host reaches:
    reserve the capacity (AllocatePrimaryStorageCapacityMsg; on local storage on that
    host), make the volume through the host's agent (HostAgentCallMsg), record it Ready
    and attached to the VM (device 0). On failure nothing is left (capacity returned).
    Undo with DeleteVolumeMsg(expunge=True)."""

    service: ClassVar[str] = VOLUME_SERVICE
    route_by: ClassVar[str | None] = "volume_uuid"
    volume_uuid: str
    name: str
    vm_instance_uuid: str
    host_uuid: str
    cluster_uuid: str
    image_uuid: str
    size: int = 0  # bytes; 0 = the image's size; a root disk offering makes it bigger
    primary_storage_uuid: str | None = None  # required storage, if the caller chose one
    disk_offering_uuid: str | None = None
    account_uuid: str | None = None
    # The image as the caller just read it (a VM's create checked it is Ready): saves the
    # volume service a read. None: the service reads it.
    image: ImageInventory | None = None


class CreateDataVolumeForVmMsg(NeedReplyMessage):
    """Create an empty data volume of ``size`` bytes for a VM being created, on storage
    the host reaches, attached to it at ``device_id``. Same guarantees as the root one."""

    service: ClassVar[str] = VOLUME_SERVICE
    route_by: ClassVar[str | None] = "volume_uuid"
    volume_uuid: str
    name: str
    vm_instance_uuid: str
    host_uuid: str
    cluster_uuid: str
    size: int = Field(ge=1)
    device_id: int = Field(ge=1)
    primary_storage_uuid: str | None = None
    disk_offering_uuid: str | None = None
    account_uuid: str | None = None


class VolumeReply(Reply):
    volume: VolumeView | None = None


class DeleteVolumeMsg(NeedReplyMessage):
    """Delete a volume: with ``expunge`` remove it from its storage (agent) and return the
    capacity; without, mark it Deleted (recoverable). Answers success for an unknown
    volume (idempotent, rollbacks rely on it)."""

    service: ClassVar[str] = VOLUME_SERVICE
    route_by: ClassVar[str | None] = "volume_uuid"
    volume_uuid: str
    expunge: bool = True


class ListVmVolumesMsg(NeedReplyMessage):
    """The volumes attached to a VM, root first, then data volumes by device id."""

    service: ClassVar[str] = VOLUME_SERVICE
    vm_instance_uuid: str


class ListVmVolumesReply(Reply):
    volumes: list[VolumeView] = Field(default_factory=list)


# ----- additions of the volume service (below the lead's contract) -----------------------

_VOLUME_PKG = "org.zstack.header.volume"


class VolumeInventory(Inventory):
    uuid: str
    name: str
    description: str | None = None
    primary_storage_uuid: str | None = None
    vm_instance_uuid: str | None = None
    disk_offering_uuid: str | None = None
    root_image_uuid: str | None = None
    install_path: str | None = None
    type: str
    format: str
    size: int
    actual_size: int = 0
    device_id: int | None = None
    state: str
    status: str
    create_date: datetime
    last_op_date: datetime
    is_shareable: bool = False
    volume_qos: str | None = None
    last_detach_date: datetime | None = None
    last_vm_instance_uuid: str | None = None
    last_attach_date: datetime | None = None
    protocol: str | None = None


class VolumeEvent(APIReply):
    inventory: VolumeInventory | None = None


# ----- data volume API -----------------------------------------------------------------


class APICreateDataVolumeMsg(APICreateMessage):
    """A data volume of ``diskSize`` bytes or of the disk offering's size. It takes no
    storage until first attached (NotInstantiated, as in ZStack): the attach makes it on
    storage the VM's host reaches (``primaryStorageUuid`` if given)."""

    api_service: ClassVar[str] = VOLUME_SERVICE
    api: ClassVar[ApiSpec | None] = ApiSpec(
        name="CreateDataVolume",
        java_class=f"{_VOLUME_PKG}.APICreateDataVolumeMsg",
        method="POST",
        path="/volumes/data",
        body_key="params",
        result_java_class=f"{_VOLUME_PKG}.APICreateDataVolumeEvent",
        creates=VOLUME_RESOURCE_TYPE,
        summary="Create a data volume (NotInstantiated until first attached to a VM)",
    )
    route_by: ClassVar[str | None] = "resource_uuid"
    name: str = Field(min_length=1, max_length=255)
    description: str | None = Field(None, max_length=2048)
    disk_offering_uuid: str | None = None
    disk_size: int | None = Field(None, ge=1, le=2**63 - 1)
    primary_storage_uuid: str | None = None

    @model_validator(mode="after")
    def _has_size(self) -> Self:
        if self.disk_offering_uuid is None and self.disk_size is None:
            raise ValueError("give diskOfferingUuid or diskSize")
        return self


class APIAttachDataVolumeToVmMsg(APIMessage):
    api_service: ClassVar[str] = VOLUME_SERVICE
    api: ClassVar[ApiSpec | None] = ApiSpec(
        name="AttachDataVolumeToVm",
        java_class=f"{_VOLUME_PKG}.APIAttachDataVolumeToVmMsg",
        method="POST",
        path="/volumes/{volumeUuid}/vm-instances/{vmInstanceUuid}",
        body_key="params",
        result_java_class=f"{_VOLUME_PKG}.APIAttachDataVolumeToVmEvent",
        summary="Attach a data volume to a Running or Stopped VM (a NotInstantiated one is "
        "first made on storage the VM's host reaches)",
    )
    route_by: ClassVar[str | None] = "volume_uuid"
    volume_uuid: str
    vm_instance_uuid: str


class APIDetachDataVolumeFromVmMsg(APIMessage):
    api_service: ClassVar[str] = VOLUME_SERVICE
    api: ClassVar[ApiSpec | None] = ApiSpec(
        name="DetachDataVolumeFromVm",
        java_class=f"{_VOLUME_PKG}.APIDetachDataVolumeFromVmMsg",
        method="DELETE",
        path="/volumes/{uuid}/vm-instances",
        result_java_class=f"{_VOLUME_PKG}.APIDetachDataVolumeFromVmEvent",
        summary="Detach a data volume from its VM",
    )
    route_by: ClassVar[str | None] = "uuid"
    uuid: str
    vm_uuid: str | None = None


class APIDeleteDataVolumeMsg(APIMessage):
    api_service: ClassVar[str] = VOLUME_SERVICE
    api: ClassVar[ApiSpec | None] = ApiSpec(
        name="DeleteDataVolume",
        java_class=f"{_VOLUME_PKG}.APIDeleteDataVolumeMsg",
        method="DELETE",
        path="/volumes/{uuid}",
        result_java_class=f"{_VOLUME_PKG}.APIDeleteDataVolumeEvent",
        summary="Delete a data volume (detached first) as the global config volume "
        "deletionPolicy says: Direct removes it now, Delay and Never mark it Deleted",
    )
    route_by: ClassVar[str | None] = "uuid"
    uuid: str
    delete_mode: Literal["Permissive", "Enforcing"] = "Permissive"


class APIExpungeDataVolumeMsg(APIMessage):
    api_service: ClassVar[str] = VOLUME_SERVICE
    api: ClassVar[ApiSpec | None] = ApiSpec(
        name="ExpungeDataVolume",
        java_class=f"{_VOLUME_PKG}.APIExpungeDataVolumeMsg",
        method="PUT",
        path="/volumes/{uuid}/actions",
        body_key="expungeDataVolume",
        result_java_class=f"{_VOLUME_PKG}.APIExpungeDataVolumeEvent",
        summary="Remove a Deleted data volume from its storage for good",
    )
    route_by: ClassVar[str | None] = "uuid"
    uuid: str


class APIRecoverDataVolumeMsg(APIMessage):
    api_service: ClassVar[str] = VOLUME_SERVICE
    api: ClassVar[ApiSpec | None] = ApiSpec(
        name="RecoverDataVolume",
        java_class=f"{_VOLUME_PKG}.APIRecoverDataVolumeMsg",
        method="PUT",
        path="/volumes/{uuid}/actions",
        body_key="recoverDataVolume",
        result_java_class=f"{_VOLUME_PKG}.APIRecoverDataVolumeEvent",
        summary="Make a Deleted data volume usable again (Ready, or NotInstantiated)",
    )
    route_by: ClassVar[str | None] = "uuid"
    uuid: str


class APIUpdateVolumeMsg(APIMessage):
    api_service: ClassVar[str] = VOLUME_SERVICE
    api: ClassVar[ApiSpec | None] = ApiSpec(
        name="UpdateVolume",
        java_class=f"{_VOLUME_PKG}.APIUpdateVolumeMsg",
        method="PUT",
        path="/volumes/{uuid}/actions",
        body_key="updateVolume",
        result_java_class=f"{_VOLUME_PKG}.APIUpdateVolumeEvent",
        summary="Change a volume's name or description",
    )
    route_by: ClassVar[str | None] = "uuid"
    uuid: str
    name: str | None = Field(None, min_length=1, max_length=255)
    description: str | None = Field(None, max_length=2048)


class APIChangeVolumeStateMsg(APIMessage):
    api_service: ClassVar[str] = VOLUME_SERVICE
    api: ClassVar[ApiSpec | None] = ApiSpec(
        name="ChangeVolumeState",
        java_class=f"{_VOLUME_PKG}.APIChangeVolumeStateMsg",
        method="PUT",
        path="/volumes/{uuid}/actions",
        body_key="changeVolumeState",
        result_java_class=f"{_VOLUME_PKG}.APIChangeVolumeStateEvent",
        summary="Enable or disable a volume (a Disabled data volume cannot be attached)",
    )
    route_by: ClassVar[str | None] = "uuid"
    uuid: str
    state_event: Literal["enable", "disable"]


class APIQueryVolumeMsg(APIQueryMessage):
    query_of: ClassVar[str] = "Volume"
    api: ClassVar[ApiSpec | None] = ApiSpec(
        name="QueryVolume",
        java_class=f"{_VOLUME_PKG}.APIQueryVolumeMsg",
        method="GET",
        path="/volumes",
        is_async=False,
        result_java_class=f"{_VOLUME_PKG}.APIQueryVolumeReply",
        summary="Query volumes",
    )


# ----- internal additions --------------------------------------------------------------


class GetVolumeMsg(NeedReplyMessage):
    """One volume as VolumeView (any node answers: a read). SYS.1003 when unknown."""

    service: ClassVar[str] = VOLUME_SERVICE
    volume_uuid: str


class RecoverVolumeMsg(NeedReplyMessage):
    """Undo DeleteVolumeMsg(expunge=False): a Deleted volume is Ready again (a recovered
    VM's root volume). Answers VolumeReply; VOLUME.1007 when it is not Deleted."""

    service: ClassVar[str] = VOLUME_SERVICE
    route_by: ClassVar[str | None] = "volume_uuid"
    volume_uuid: str


class DetachVmDataVolumesMsg(NeedReplyMessage):
    """A VM is being expunged: its data volumes become detached (Ready, no VM) without
    any agent call, each in its own queue. Its root volume is left to DeleteVolumeMsg."""

    service: ClassVar[str] = VOLUME_SERVICE
    vm_instance_uuid: str


# The same message under the name it first had: older callers keep working.
DetachVolumesOfVmMsg = DetachVmDataVolumesMsg


class ForgetVolumeAttachmentMsg(NeedReplyMessage):
    """One volume of DetachVmDataVolumesMsg, in the volume's queue on its owner."""

    service: ClassVar[str] = VOLUME_SERVICE
    route_by: ClassVar[str | None] = "volume_uuid"
    volume_uuid: str
    vm_instance_uuid: str


class APIGetDataVolumeAttachableVmMsg(APIMessage):
    api_service: ClassVar[str] = "volumeAttachableVm"
    api: ClassVar[ApiSpec | None] = ApiSpec(
        name="GetDataVolumeAttachableVm",
        java_class=f"{_VOLUME_PKG}.APIGetDataVolumeAttachableVmMsg",
        method="GET",
        path="/volumes/{volumeUuid}/candidate-vm-instances",
        is_async=False,
        result_java_class=f"{_VOLUME_PKG}.APIGetDataVolumeAttachableVmReply",
        summary="The Running or Stopped VMs a detached data volume could be attached to",
    )
    route_by: ClassVar[str | None] = "volume_uuid"
    volume_uuid: str


class APIGetDataVolumeAttachableVmReply(APIReply):
    inventories: list[dict[str, Any]] = Field(default_factory=list)  # VmInstanceInventory
