"""The offering services' contract: instance and disk offerings, their API messages and
inventories, and the names of the allocator strategies an offering may ask for."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar, Literal, Self, get_args

from pydantic import Field, model_validator

from zstackpy.api.messages import (
    APICreateMessage,
    APIMessage,
    APIQueryMessage,
    APIReply,
    ApiSpec,
    Inventory,
)

INSTANCE_OFFERING_SERVICE = "instanceOffering"
DISK_OFFERING_SERVICE = "diskOffering"
_PKG = "org.zstack.header.configuration"

MIB = 1024**2
# Smallest memory an instance offering may give a VM: below this no guest OS we know boots,
# so a smaller value is a typo (bytes meant as MiB), refused rather than stored.
MIN_MEMORY_SIZE = 16 * MIB
MAX_CPU_NUM = 1024
# The columns' ranges: a larger number is refused as invalid, not failed on at insert.
MAX_BYTES = 2**63 - 1  # BigInteger
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1  # Integer

# An offering's allocatorStrategy must name a host allocator strategy some plugin
# registered (services.host.extensions.HostAllocatorStrategy): checked when it is set.
DEFAULT_HOST_ALLOCATOR_STRATEGY = "DefaultHostAllocatorStrategy"

# ZStack's primary storage allocation strategy names (disk offerings).
PrimaryStorageAllocatorStrategy = Literal[
    "DefaultPrimaryStorageAllocationStrategy",
    "LeastVolumePrimaryStorageAllocationStrategy",
    "LocalPrimaryStorageStrategy",
]
PRIMARY_STORAGE_ALLOCATOR_STRATEGIES: tuple[str, ...] = get_args(PrimaryStorageAllocatorStrategy)
DEFAULT_PRIMARY_STORAGE_ALLOCATOR_STRATEGY = "DefaultPrimaryStorageAllocationStrategy"


class InstanceOfferingInventory(Inventory):
    uuid: str
    name: str
    description: str | None = None
    cpu_num: int
    cpu_speed: int
    memory_size: int  # bytes
    reserved_memory_size: int  # bytes
    type: str
    allocator_strategy: str | None = None
    sort_key: int
    state: str
    create_date: datetime
    last_op_date: datetime


class DiskOfferingInventory(Inventory):
    uuid: str
    name: str
    description: str | None = None
    disk_size: int  # bytes
    sort_key: int
    state: str
    type: str
    allocator_strategy: str | None = None
    create_date: datetime
    last_op_date: datetime


class InstanceOfferingEvent(APIReply):
    inventory: InstanceOfferingInventory | None = None


class DiskOfferingEvent(APIReply):
    inventory: DiskOfferingInventory | None = None


# ----- instance offerings -----------------------------------------------------------------


class APICreateInstanceOfferingMsg(APICreateMessage):
    api_service: ClassVar[str] = INSTANCE_OFFERING_SERVICE
    api: ClassVar[ApiSpec | None] = ApiSpec(
        name="CreateInstanceOffering",
        java_class=f"{_PKG}.APICreateInstanceOfferingMsg",
        method="POST",
        path="/instance-offerings",
        body_key="params",
        result_java_class=f"{_PKG}.APICreateInstanceOfferingEvent",
        creates="InstanceOfferingVO",
        summary="Create an instance offering: the CPUs and memory (bytes, >= 16 MiB) of a VM",
    )
    route_by: ClassVar[str | None] = "resource_uuid"
    name: str = Field(min_length=1, max_length=255)
    description: str | None = Field(None, max_length=2048)
    cpu_num: int = Field(ge=1, le=MAX_CPU_NUM)
    cpu_speed: int = Field(0, ge=0, le=INT32_MAX)  # MHz; 0: no requirement (ZStack's)
    memory_size: int = Field(ge=MIN_MEMORY_SIZE, le=MAX_BYTES)
    reserved_memory_size: int = Field(0, ge=0, le=MAX_BYTES)
    allocator_strategy: str | None = Field(None, min_length=1, max_length=128)
    sort_key: int = Field(0, ge=INT32_MIN, le=INT32_MAX)
    type: Literal["UserVm"] = "UserVm"

    @model_validator(mode="after")
    def _reserved_fits(self) -> Self:
        if self.reserved_memory_size > self.memory_size:
            raise ValueError("reservedMemorySize must not exceed memorySize")
        return self


class APIUpdateInstanceOfferingMsg(APIMessage):
    api_service: ClassVar[str] = INSTANCE_OFFERING_SERVICE
    api: ClassVar[ApiSpec | None] = ApiSpec(
        name="UpdateInstanceOffering",
        java_class=f"{_PKG}.APIUpdateInstanceOfferingMsg",
        method="PUT",
        path="/instance-offerings/{uuid}/actions",
        body_key="updateInstanceOffering",
        result_java_class=f"{_PKG}.APIUpdateInstanceOfferingEvent",
        summary="Change an instance offering's name, description or allocator strategy",
    )
    route_by: ClassVar[str | None] = "uuid"
    uuid: str
    name: str | None = Field(None, min_length=1, max_length=255)
    description: str | None = Field(None, max_length=2048)
    allocator_strategy: str | None = Field(None, min_length=1, max_length=128)


class APIChangeInstanceOfferingStateMsg(APIMessage):
    api_service: ClassVar[str] = INSTANCE_OFFERING_SERVICE
    api: ClassVar[ApiSpec | None] = ApiSpec(
        name="ChangeInstanceOfferingState",
        java_class=f"{_PKG}.APIChangeInstanceOfferingStateMsg",
        method="PUT",
        path="/instance-offerings/{uuid}/actions",
        body_key="changeInstanceOfferingState",
        result_java_class=f"{_PKG}.APIChangeInstanceOfferingStateEvent",
        summary="Enable or disable an instance offering",
    )
    route_by: ClassVar[str | None] = "uuid"
    uuid: str
    state_event: Literal["enable", "disable"]


class APIDeleteInstanceOfferingMsg(APIMessage):
    api_service: ClassVar[str] = INSTANCE_OFFERING_SERVICE
    api: ClassVar[ApiSpec | None] = ApiSpec(
        name="DeleteInstanceOffering",
        java_class=f"{_PKG}.APIDeleteInstanceOfferingMsg",
        method="DELETE",
        path="/instance-offerings/{uuid}",
        result_java_class=f"{_PKG}.APIDeleteInstanceOfferingEvent",
        summary="Delete an instance offering (VMs made from it keep their sizes)",
    )
    route_by: ClassVar[str | None] = "uuid"
    uuid: str
    delete_mode: Literal["Permissive", "Enforcing"] = "Permissive"


class APIQueryInstanceOfferingMsg(APIQueryMessage):
    query_of: ClassVar[str] = "InstanceOffering"
    api: ClassVar[ApiSpec | None] = ApiSpec(
        name="QueryInstanceOffering",
        java_class=f"{_PKG}.APIQueryInstanceOfferingMsg",
        method="GET",
        path="/instance-offerings",
        is_async=False,
        result_java_class=f"{_PKG}.APIQueryInstanceOfferingReply",
        summary="Query instance offerings",
    )


# ----- disk offerings ---------------------------------------------------------------------


class APICreateDiskOfferingMsg(APICreateMessage):
    api_service: ClassVar[str] = DISK_OFFERING_SERVICE
    api: ClassVar[ApiSpec | None] = ApiSpec(
        name="CreateDiskOffering",
        java_class=f"{_PKG}.APICreateDiskOfferingMsg",
        method="POST",
        path="/disk-offerings",
        body_key="params",
        result_java_class=f"{_PKG}.APICreateDiskOfferingEvent",
        creates="DiskOfferingVO",
        summary="Create a disk offering: the size (bytes) of a data volume",
    )
    route_by: ClassVar[str | None] = "resource_uuid"
    name: str = Field(min_length=1, max_length=255)
    description: str | None = Field(None, max_length=2048)
    disk_size: int = Field(gt=0, le=MAX_BYTES)
    sort_key: int = Field(0, ge=INT32_MIN, le=INT32_MAX)
    # ZStack's create message says allocationStrategy; the inventory says allocatorStrategy.
    allocation_strategy: PrimaryStorageAllocatorStrategy | None = None
    type: Literal["zstack"] = "zstack"


class APIUpdateDiskOfferingMsg(APIMessage):
    api_service: ClassVar[str] = DISK_OFFERING_SERVICE
    api: ClassVar[ApiSpec | None] = ApiSpec(
        name="UpdateDiskOffering",
        java_class=f"{_PKG}.APIUpdateDiskOfferingMsg",
        method="PUT",
        path="/disk-offerings/{uuid}/actions",
        body_key="updateDiskOffering",
        result_java_class=f"{_PKG}.APIUpdateDiskOfferingEvent",
        summary="Change a disk offering's name or description",
    )
    route_by: ClassVar[str | None] = "uuid"
    uuid: str
    name: str | None = Field(None, min_length=1, max_length=255)
    description: str | None = Field(None, max_length=2048)


class APIChangeDiskOfferingStateMsg(APIMessage):
    api_service: ClassVar[str] = DISK_OFFERING_SERVICE
    api: ClassVar[ApiSpec | None] = ApiSpec(
        name="ChangeDiskOfferingState",
        java_class=f"{_PKG}.APIChangeDiskOfferingStateMsg",
        method="PUT",
        path="/disk-offerings/{uuid}/actions",
        body_key="changeDiskOfferingState",
        result_java_class=f"{_PKG}.APIChangeDiskOfferingStateEvent",
        summary="Enable or disable a disk offering",
    )
    route_by: ClassVar[str | None] = "uuid"
    uuid: str
    state_event: Literal["enable", "disable"]


class APIDeleteDiskOfferingMsg(APIMessage):
    api_service: ClassVar[str] = DISK_OFFERING_SERVICE
    api: ClassVar[ApiSpec | None] = ApiSpec(
        name="DeleteDiskOffering",
        java_class=f"{_PKG}.APIDeleteDiskOfferingMsg",
        method="DELETE",
        path="/disk-offerings/{uuid}",
        result_java_class=f"{_PKG}.APIDeleteDiskOfferingEvent",
        summary="Delete a disk offering (volumes made from it keep their sizes)",
    )
    route_by: ClassVar[str | None] = "uuid"
    uuid: str
    delete_mode: Literal["Permissive", "Enforcing"] = "Permissive"


class APIQueryDiskOfferingMsg(APIQueryMessage):
    query_of: ClassVar[str] = "DiskOffering"
    api: ClassVar[ApiSpec | None] = ApiSpec(
        name="QueryDiskOffering",
        java_class=f"{_PKG}.APIQueryDiskOfferingMsg",
        method="GET",
        path="/disk-offerings",
        is_async=False,
        result_java_class=f"{_PKG}.APIQueryDiskOfferingReply",
        summary="Query disk offerings",
    )
