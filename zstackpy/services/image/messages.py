"""The image service's contract: API messages, inventories, and what other services ask
it (an image's inventory with where its copies are)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import ClassVar, Literal, Self

from pydantic import Field, model_validator

from zstackpy.api.messages import (
    APICreateMessage,
    APIMessage,
    APIQueryMessage,
    APIReply,
    ApiSpec,
    Inventory,
)
from zstackpy.core.bus.message import NeedReplyMessage, Reply
from zstackpy.core.errors import ErrorInfo

IMAGE_SERVICE = "image"
IMAGE_TYPE = "ImageVO"  # the resource type (ResourceVO, tags)
_PKG = "org.zstack.header.image"

# Where AddImage may fetch from: anything else is refused before a row exists.
URL_SCHEMES = ("http", "https", "file", "nfs")

MediaType = Literal["RootVolumeTemplate", "ISO", "DataVolumeTemplate"]
ImageFormat = Literal["qcow2", "raw", "iso"]
Platform = Literal["Linux", "Windows", "Other", "Paravirtualization", "WindowsVirtio"]
Architecture = Literal["x86_64", "aarch64", "mips64el", "loongarch64"]


class ImageErr(StrEnum):
    """Codes of the image domain (listed in docs/errors.md)."""

    DOWNLOAD_FAILED = "IMAGE.1001"  # no named backup storage could take the image
    NOT_DELETED = "IMAGE.1002"  # expunge/recover of an image (copy) that is not Deleted
    NOT_ON_BACKUP_STORAGE = "IMAGE.1003"  # the image has no copy on that backup storage
    EXPUNGE_FAILED = "IMAGE.1004"  # a backup storage could not delete its copy


class ImageStatus(StrEnum):
    DOWNLOADING = "Downloading"
    READY = "Ready"
    DELETED = "Deleted"


class ImageBackupStorageRefInventory(Inventory):
    image_uuid: str
    backup_storage_uuid: str
    install_path: str
    status: str
    export_md5_sum: str | None = None
    export_url: str | None = None
    create_date: datetime
    last_op_date: datetime


class ImageInventory(Inventory):
    uuid: str
    name: str
    description: str | None = None
    state: str
    status: str
    size: int  # bytes
    actual_size: int  # bytes
    md5_sum: str | None = None
    url: str
    media_type: str
    guest_os_type: str | None = None
    type: str
    platform: str | None = None
    architecture: str | None = None
    format: str
    system: bool
    virtio: bool
    create_date: datetime
    last_op_date: datetime
    backup_storage_refs: list[ImageBackupStorageRefInventory] = Field(default_factory=list)


class ImageEvent(APIReply):
    inventory: ImageInventory | None = None
    # AddImage only, our addition: the backup storage that could not take the image when
    # others could (by backup storage uuid). ZStack clients ignore the unknown field.
    download_failures: dict[str, ErrorInfo] | None = None


class APIAddImageMsg(APICreateMessage):
    api_service: ClassVar[str] = IMAGE_SERVICE
    api: ClassVar[ApiSpec | None] = ApiSpec(
        name="AddImage",
        java_class=f"{_PKG}.APIAddImageMsg",
        method="POST",
        path="/images",
        body_key="params",
        result_java_class=f"{_PKG}.APIAddImageEvent",
        creates=IMAGE_TYPE,
        summary="Add an image from a URL (http, https, file, nfs): each named backup storage "
        "(Connected, Enabled) downloads a copy; Ready once at least one has it",
    )
    route_by: ClassVar[str | None] = "resource_uuid"
    name: str = Field(min_length=1, max_length=255)
    description: str | None = Field(None, max_length=2048)
    url: str = Field(min_length=1, max_length=2048)
    media_type: MediaType = "RootVolumeTemplate"
    guest_os_type: str | None = Field(None, max_length=255)
    architecture: Architecture = "x86_64"
    system: bool = False
    format: ImageFormat | None = None  # default: iso for an ISO, qcow2 otherwise
    platform: Platform = "Linux"
    backup_storage_uuids: list[str] = Field(min_length=1, max_length=64)
    type: Literal["zstack"] = "zstack"
    virtio: bool = True

    @model_validator(mode="after")
    def _format_fits_media(self) -> Self:
        if self.format is None:
            self.format = "iso" if self.media_type == "ISO" else "qcow2"
        if (self.format == "iso") != (self.media_type == "ISO"):
            raise ValueError("format iso goes with mediaType ISO, and only with it")
        # Naming a storage twice means once.
        self.backup_storage_uuids = list(dict.fromkeys(self.backup_storage_uuids))
        return self


class APIUpdateImageMsg(APIMessage):
    api_service: ClassVar[str] = IMAGE_SERVICE
    api: ClassVar[ApiSpec | None] = ApiSpec(
        name="UpdateImage",
        java_class=f"{_PKG}.APIUpdateImageMsg",
        method="PUT",
        path="/images/{uuid}/actions",
        body_key="updateImage",
        result_java_class=f"{_PKG}.APIUpdateImageEvent",
        summary="Change an image's name, description or guest properties",
    )
    route_by: ClassVar[str | None] = "uuid"
    uuid: str
    name: str | None = Field(None, min_length=1, max_length=255)
    description: str | None = Field(None, max_length=2048)
    guest_os_type: str | None = Field(None, max_length=255)
    media_type: MediaType | None = None
    format: ImageFormat | None = None
    system: bool | None = None
    platform: Platform | None = None
    architecture: Architecture | None = None
    virtio: bool | None = None


class APIChangeImageStateMsg(APIMessage):
    api_service: ClassVar[str] = IMAGE_SERVICE
    api: ClassVar[ApiSpec | None] = ApiSpec(
        name="ChangeImageState",
        java_class=f"{_PKG}.APIChangeImageStateMsg",
        method="PUT",
        path="/images/{uuid}/actions",
        body_key="changeImageState",
        result_java_class=f"{_PKG}.APIChangeImageStateEvent",
        summary="Enable or disable an image (a disabled image makes no new VMs)",
    )
    route_by: ClassVar[str | None] = "uuid"
    uuid: str
    state_event: Literal["enable", "disable"]


class APIDeleteImageMsg(APIMessage):
    api_service: ClassVar[str] = IMAGE_SERVICE
    api: ClassVar[ApiSpec | None] = ApiSpec(
        name="DeleteImage",
        java_class=f"{_PKG}.APIDeleteImageMsg",
        method="DELETE",
        path="/images/{uuid}",
        result_java_class=f"{_PKG}.APIDeleteImageEvent",
        summary="Delete an image's copies (all, or on the named backup storage) as the "
        "global config image.deletionPolicy says: Direct removes them now, Delay and "
        "Never mark them Deleted (ExpungeImage removes, RecoverImage restores)",
    )
    route_by: ClassVar[str | None] = "uuid"
    uuid: str
    backup_storage_uuids: list[str] = Field(default_factory=list)
    delete_mode: Literal["Permissive", "Enforcing"] = "Permissive"


class APIExpungeImageMsg(APIMessage):
    api_service: ClassVar[str] = IMAGE_SERVICE
    api: ClassVar[ApiSpec | None] = ApiSpec(
        name="ExpungeImage",
        java_class=f"{_PKG}.APIExpungeImageMsg",
        method="PUT",
        path="/images/{imageUuid}/actions",
        body_key="expungeImage",
        result_java_class=f"{_PKG}.APIExpungeImageEvent",
        summary="Remove an image's Deleted copies from their backup storage for good (all, "
        "or on the named backup storage), giving their capacity back",
    )
    route_by: ClassVar[str | None] = "image_uuid"
    image_uuid: str
    backup_storage_uuids: list[str] = Field(default_factory=list)


class APIRecoverImageMsg(APIMessage):
    api_service: ClassVar[str] = IMAGE_SERVICE
    api: ClassVar[ApiSpec | None] = ApiSpec(
        name="RecoverImage",
        java_class=f"{_PKG}.APIRecoverImageMsg",
        method="PUT",
        path="/images/{imageUuid}/actions",
        body_key="recoverImage",
        result_java_class=f"{_PKG}.APIRecoverImageEvent",
        summary="Make an image's Deleted copies Ready again (all, or on the named backup storage)",
    )
    route_by: ClassVar[str | None] = "image_uuid"
    image_uuid: str
    backup_storage_uuids: list[str] = Field(default_factory=list)


class APIQueryImageMsg(APIQueryMessage):
    query_of: ClassVar[str] = "Image"
    api: ClassVar[ApiSpec | None] = ApiSpec(
        name="QueryImage",
        java_class=f"{_PKG}.APIQueryImageMsg",
        method="GET",
        path="/images",
        is_async=False,
        result_java_class=f"{_PKG}.APIQueryImageReply",
        summary="Query images, with where their copies are (backupStorageRefs)",
    )


# ----- internal messages --------------------------------------------------------------------


class GetImageMsg(NeedReplyMessage):
    """An image's inventory with its backup storage copies; any node answers (reads
    only). SYS.1003 when there is no such image."""

    service: ClassVar[str] = IMAGE_SERVICE
    image_uuid: str


class GetImageReply(Reply):
    inventory: ImageInventory | None = None
