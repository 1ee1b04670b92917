"""The VM service's API messages (ZStack's names, paths and body keys) and their replies."""

from __future__ import annotations

from typing import ClassVar, Literal, Self

from pydantic import Field, model_validator

from zstackpy.api.messages import (
    APICreateMessage,
    APIMessage,
    APIQueryMessage,
    APIReply,
    ApiSpec,
)
from zstackpy.services.host.messages import HostInventory
from zstackpy.services.vm.messages import VM_RESOURCE_TYPE, VM_SERVICE, VmInstanceInventory

_PKG = "org.zstack.header.vm"
_ACTIONS = "/vm-instances/{uuid}/actions"

Strategy = Literal["InstantStart", "JustCreate", "CreateStopped"]
Platform = Literal["Linux", "Windows", "Other", "Paravirtualization", "WindowsVirtio"]
Architecture = Literal["x86_64", "aarch64", "mips64el", "loongarch64"]
MAX_CPU_NUM = 1024
MAX_BYTES = 2**63 - 1


class VmInstanceEvent(APIReply):
    inventory: VmInstanceInventory | None = None


def _spec(name: str, path: str = _ACTIONS, *, summary: str, **kw: object) -> ApiSpec:
    """An async action on one VM unless ``kw`` says otherwise."""
    fields: dict[str, object] = {
        "name": name,
        "java_class": f"{_PKG}.API{name}Msg",
        "method": "PUT",
        "path": path,
        "body_key": name[:1].lower() + name[1:],
        "result_java_class": f"{_PKG}.API{name}Event",
        "summary": summary,
    }
    fields.update(kw)
    return ApiSpec(**fields)  # type: ignore[arg-type]  # the keys are ApiSpec's fields


class APICreateVmInstanceMsg(APICreateMessage):
    """Create a VM from an image (``flows/vm-create.yaml``). Sizes: an instance offering,
    or ``cpuNum`` and ``memorySize`` (bytes) given directly."""

    api_service: ClassVar[str] = VM_SERVICE
    api: ClassVar[ApiSpec | None] = ApiSpec(
        name="CreateVmInstance",
        java_class=f"{_PKG}.APICreateVmInstanceMsg",
        method="POST",
        path="/vm-instances",
        body_key="params",
        result_java_class=f"{_PKG}.APICreateVmInstanceEvent",
        creates=VM_RESOURCE_TYPE,
        summary="Create a VM: choose a host, make its root (and data) volumes, allocate its "
        "NICs and start it (or leave it Stopped with strategy CreateStopped)",
    )
    route_by: ClassVar[str | None] = "resource_uuid"
    name: str = Field(min_length=1, max_length=255)
    description: str | None = Field(None, max_length=2048)
    instance_offering_uuid: str | None = None
    cpu_num: int | None = Field(None, ge=1, le=MAX_CPU_NUM)
    memory_size: int | None = Field(None, ge=1, le=MAX_BYTES)
    image_uuid: str
    l3_network_uuids: list[str] = Field(min_length=1, max_length=64)
    default_l3_network_uuid: str | None = None
    type: Literal["UserVm"] = "UserVm"
    root_disk_offering_uuid: str | None = None
    root_disk_size: int | None = Field(None, ge=1, le=MAX_BYTES)
    data_disk_offering_uuids: list[str] = Field(default_factory=list, max_length=64)
    data_disk_sizes: list[int] = Field(default_factory=list, max_length=64)
    zone_uuid: str | None = None
    cluster_uuid: str | None = None
    host_uuid: str | None = None
    primary_storage_uuid_for_root_volume: str | None = None
    strategy: Strategy = "InstantStart"
    platform: Platform | None = None
    architecture: Architecture | None = None
    guest_os_type: str | None = Field(None, max_length=255)

    @model_validator(mode="after")
    def _check(self) -> Self:
        if any(size < 1 or size > MAX_BYTES for size in self.data_disk_sizes):
            raise ValueError("every dataDiskSizes entry must be a positive number of bytes")
        if len(set(self.l3_network_uuids)) != len(self.l3_network_uuids):
            raise ValueError("l3NetworkUuids names an L3 network twice")
        return self


class APIStartVmInstanceMsg(APIMessage):
    api_service: ClassVar[str] = VM_SERVICE
    api: ClassVar[ApiSpec | None] = _spec(
        "StartVmInstance", summary="Start a Stopped VM (on its last host when it can)"
    )
    route_by: ClassVar[str | None] = "uuid"
    uuid: str
    cluster_uuid: str | None = None
    host_uuid: str | None = None


class APIStopVmInstanceMsg(APIMessage):
    api_service: ClassVar[str] = VM_SERVICE
    api: ClassVar[ApiSpec | None] = _spec(
        "StopVmInstance",
        summary="Stop a Running or Paused VM: grace asks the guest, cold pulls the plug",
    )
    route_by: ClassVar[str | None] = "uuid"
    uuid: str
    type: Literal["grace", "cold"] = "grace"
    stop_ha: Literal["true"] | None = None


class APIRebootVmInstanceMsg(APIMessage):
    api_service: ClassVar[str] = VM_SERVICE
    api: ClassVar[ApiSpec | None] = _spec("RebootVmInstance", summary="Reboot a Running VM")
    route_by: ClassVar[str | None] = "uuid"
    uuid: str


class APIPauseVmInstanceMsg(APIMessage):
    api_service: ClassVar[str] = VM_SERVICE
    api: ClassVar[ApiSpec | None] = _spec("PauseVmInstance", summary="Pause a Running VM")
    route_by: ClassVar[str | None] = "uuid"
    uuid: str


class APIResumeVmInstanceMsg(APIMessage):
    api_service: ClassVar[str] = VM_SERVICE
    api: ClassVar[ApiSpec | None] = _spec("ResumeVmInstance", summary="Resume a Paused VM")
    route_by: ClassVar[str | None] = "uuid"
    uuid: str


class APIDestroyVmInstanceMsg(APIMessage):
    api_service: ClassVar[str] = VM_SERVICE
    api: ClassVar[ApiSpec | None] = _spec(
        "DestroyVmInstance",
        "/vm-instances/{uuid}",
        method="DELETE",
        body_key=None,
        summary="Destroy a VM as the global config vm.deletionPolicy says: Delay and Never "
        "keep it Destroyed (RecoverVmInstance brings it back), Direct expunges it now",
    )
    route_by: ClassVar[str | None] = "uuid"
    uuid: str
    delete_mode: Literal["Permissive", "Enforcing"] = "Permissive"


class APIRecoverVmInstanceMsg(APIMessage):
    api_service: ClassVar[str] = VM_SERVICE
    api: ClassVar[ApiSpec | None] = _spec(
        "RecoverVmInstance", summary="Bring a Destroyed VM back, Stopped"
    )
    route_by: ClassVar[str | None] = "uuid"
    uuid: str


class APIExpungeVmInstanceMsg(APIMessage):
    api_service: ClassVar[str] = VM_SERVICE
    api: ClassVar[ApiSpec | None] = _spec(
        "ExpungeVmInstance",
        summary="Remove a Destroyed VM for good: its root volume, NICs and addresses go, its "
        "data volumes are detached",
    )
    route_by: ClassVar[str | None] = "uuid"
    uuid: str


class APIMigrateVmMsg(APIMessage):
    api_service: ClassVar[str] = VM_SERVICE
    api: ClassVar[ApiSpec | None] = _spec(
        "MigrateVm",
        "/vm-instances/{vmInstanceUuid}/actions",
        summary="Live-migrate a Running VM to another host (the allocator chooses one when "
        "hostUuid is not given)",
    )
    route_by: ClassVar[str | None] = "vm_instance_uuid"
    vm_instance_uuid: str
    host_uuid: str | None = None
    migrate_from_destination: bool | None = None
    allow_unknown: bool | None = None
    strategy: Literal["auto-converge"] | None = None
    down_time: int | None = Field(None, ge=0)


class APIGetVmMigrationCandidateHostsMsg(APIMessage):
    api_service: ClassVar[str] = VM_SERVICE
    api: ClassVar[ApiSpec | None] = _spec(
        "GetVmMigrationCandidateHosts",
        "/vm-instances/{vmInstanceUuid}/migration-target-hosts",
        method="GET",
        body_key=None,
        is_async=False,
        result_java_class=f"{_PKG}.APIGetVmMigrationCandidateHostsReply",
        summary="The hosts a Running VM could be migrated to now",
    )
    route_by: ClassVar[str | None] = "vm_instance_uuid"
    vm_instance_uuid: str


class APIGetVmMigrationCandidateHostsReply(APIReply):
    inventories: list[HostInventory] = Field(default_factory=list)


class APIUpdateVmInstanceMsg(APIMessage):
    api_service: ClassVar[str] = VM_SERVICE
    api: ClassVar[ApiSpec | None] = _spec(
        "UpdateVmInstance",
        summary="Change a VM's name, description, platform or default L3 network; its "
        "cpuNum and memorySize only while it is Stopped",
    )
    route_by: ClassVar[str | None] = "uuid"
    uuid: str
    name: str | None = Field(None, min_length=1, max_length=255)
    description: str | None = Field(None, max_length=2048)
    state: Literal["Stopped", "Running"] | None = None
    default_l3_network_uuid: str | None = None
    platform: Platform | None = None
    cpu_num: int | None = Field(None, ge=1, le=MAX_CPU_NUM)
    memory_size: int | None = Field(None, ge=1, le=MAX_BYTES)
    reserved_memory_size: int | None = Field(None, ge=0, le=MAX_BYTES)
    guest_os_type: str | None = Field(None, max_length=255)


class APIChangeInstanceOfferingMsg(APIMessage):
    api_service: ClassVar[str] = VM_SERVICE
    api: ClassVar[ApiSpec | None] = _spec(
        "ChangeInstanceOffering",
        "/vm-instances/{vmInstanceUuid}/actions",
        summary="Give a Stopped VM the CPU and memory of another instance offering",
    )
    route_by: ClassVar[str | None] = "vm_instance_uuid"
    vm_instance_uuid: str
    instance_offering_uuid: str


class APIQueryVmInstanceMsg(APIQueryMessage):
    query_of: ClassVar[str] = "VmInstance"
    api: ClassVar[ApiSpec | None] = ApiSpec(
        name="QueryVmInstance",
        java_class=f"{_PKG}.APIQueryVmInstanceMsg",
        method="GET",
        path="/vm-instances",
        is_async=False,
        result_java_class=f"{_PKG}.APIQueryVmInstanceReply",
        summary="Query VMs, with their NICs and volumes",
    )


class APIQueryVmNicMsg(APIQueryMessage):
    query_of: ClassVar[str] = "VmNic"
    api: ClassVar[ApiSpec | None] = ApiSpec(
        name="QueryVmNic",
        java_class=f"{_PKG}.APIQueryVmNicMsg",
        method="GET",
        path="/vm-instances/nics",
        is_async=False,
        result_java_class=f"{_PKG}.APIQueryVmNicReply",
        summary="Query VM NICs",
    )
