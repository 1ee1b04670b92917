"""The host service's contract: the messages other services send it, and (added by the
host service itself) its API messages and inventories."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, Field

from zstackpy.api.messages import (
    APIMessage,
    APIQueryMessage,
    APIReply,
    ApiSpec,
    Inventory,
)
from zstackpy.core.bus.message import Event, NeedReplyMessage, Reply

HOST_SERVICE = "host"
HOST_ALLOCATOR_SERVICE = "hostAllocator"
HOST_RESOURCE_TYPE = "HostVO"  # the ResourceVO type of every host, whatever its hypervisor
_PKG = "org.zstack.header.host"
_ALLOCATOR_PKG = "org.zstack.header.allocator"


class HostErr(StrEnum):
    """Codes of the host domain (listed in docs/errors.md)."""

    DUPLICATE_MANAGEMENT_IP = "HOST.1001"
    WRONG_STATE = "HOST.1002"  # e.g. a command for a host that is not Connected
    CONNECT_FAILED = "HOST.1003"
    IDENTITY_MISMATCH = "HOST.1004"  # the agent at the host's address answers as another host
    NOT_KVM_CLUSTER = "HOST.1005"  # AddKVMHost to a cluster whose hypervisor is not KVM
    BAD_STATE_EVENT = "HOST.1006"  # a state change the host's current state does not allow
    REPORT_REFUSED = "HOST.1007"  # an agent report without the host's token
    NO_AVAILABLE_HOST = "HOST.1101"  # the allocator found no host; details name the filter
    CAPACITY_EXHAUSTED = "HOST.1102"  # the reserve lost a race for the last capacity
    UNKNOWN_STRATEGY = "HOST.1103"  # AllocateHostMsg names no registered strategy


class HostStatus(StrEnum):
    CONNECTING = "Connecting"
    CONNECTED = "Connected"
    DISCONNECTED = "Disconnected"


class HostState(StrEnum):
    ENABLED = "Enabled"
    DISABLED = "Disabled"
    PRE_MAINTENANCE = "PreMaintenance"
    MAINTENANCE = "Maintenance"


class HostSummary(BaseModel):
    """What other services need to know about a host to act on it."""

    uuid: str
    name: str
    zone_uuid: str
    cluster_uuid: str
    management_ip: str
    hypervisor_type: str
    state: str
    status: str


class ListHostsMsg(NeedReplyMessage):
    """Hosts of some clusters (or a zone), any node answers (reads only)."""

    service: ClassVar[str] = HOST_SERVICE
    cluster_uuids: list[str] = Field(default_factory=list)
    zone_uuid: str | None = None
    host_uuids: list[str] = Field(default_factory=list)  # only these, when given
    connected_only: bool = True


class ListHostsReply(Reply):
    hosts: list[HostSummary] = Field(default_factory=list)


class HostAgentCallMsg(NeedReplyMessage):
    """Run one agent command on a host, in the host's queue on its owner node (ZStack's
    KVMHostAsyncHttpCallMsg): storage and network services use it to reach hosts without
    knowing their tokens. Fails with HOST.1002 when the host is not Connected."""

    service: ClassVar[str] = HOST_SERVICE
    route_by: ClassVar[str | None] = "host_uuid"
    host_uuid: str
    path: str
    command: dict[str, Any] = Field(default_factory=dict)
    timeout: float = 300.0


class HostAgentCallReply(Reply):
    result: dict[str, Any] = Field(default_factory=dict)


class HostCandidate(BaseModel):
    """A host the allocator may choose, with its free capacity at selection time."""

    uuid: str
    name: str
    zone_uuid: str
    cluster_uuid: str
    management_ip: str
    hypervisor_type: str
    available_cpu: int
    available_memory: int


class AllocateHostMsg(NeedReplyMessage):
    """Choose a host for a VM and reserve its CPU and memory there (atomically, in the
    host's queue); the reply names the host. With ``dry_run`` reserve nothing and answer
    every candidate that passed the filters (migration targets, candidate listings)."""

    service: ClassVar[str] = HOST_ALLOCATOR_SERVICE
    vm_instance_uuid: str | None = None
    cpu_num: int = Field(ge=1)
    memory_size: int = Field(ge=1)  # bytes
    zone_uuid: str | None = None
    cluster_uuids: list[str] = Field(default_factory=list)
    host_uuid: str | None = None
    excluded_host_uuids: list[str] = Field(default_factory=list)
    hypervisor_type: str | None = None
    l3_network_uuids: list[str] = Field(default_factory=list)
    # The clusters attached to the L2 of every L3 above, as the caller just read them (a
    # VM's create did): spares the network filter its reads. None: the filter reads them.
    l3_cluster_uuids: list[str] | None = None
    image_uuid: str | None = None
    # The backup storage holding the image Ready, as the caller just read the image (a
    # VM's create did, checking it is Ready): spares the image filter its reads. None: the
    # filter reads the image.
    image_ready_on: list[str] | None = None
    primary_storage_uuids: list[str] = Field(default_factory=list)  # required (any of)
    disk_size: int = 0  # bytes the VM's volumes need on primary storage
    host_tags: list[str] = Field(default_factory=list)  # system tags the host must carry
    strategy: str = "DefaultHostAllocatorStrategy"
    dry_run: bool = False


class AllocateHostReply(Reply):
    host: HostCandidate | None = None
    candidates: list[HostCandidate] = Field(default_factory=list)


class ReturnHostCapacityMsg(NeedReplyMessage):
    """Give back what an allocation (or a VM) reserved on a host."""

    service: ClassVar[str] = HOST_SERVICE
    route_by: ClassVar[str | None] = "host_uuid"
    host_uuid: str
    cpu_num: int = Field(ge=0)
    memory_size: int = Field(ge=0)


# ----- additions of the host service (below the lead's contract) --------------------------


class HostInventory(Inventory):
    """ZStack's HostInventory. A KVM host also fills the KVMHostInventory fields (username,
    sshPort, os*); other hypervisors leave them None. Never carries a password or token."""

    uuid: str
    name: str
    description: str | None = None
    zone_uuid: str
    cluster_uuid: str
    management_ip: str
    hypervisor_type: str
    state: str
    status: str
    architecture: str | None = None
    cpu_num: int = 0
    cpu_sockets: int = 0
    total_cpu_capacity: int = 0
    available_cpu_capacity: int = 0
    total_memory_capacity: int = 0
    available_memory_capacity: int = 0
    create_date: datetime
    last_op_date: datetime
    # KVMHostInventory
    username: str | None = None
    ssh_port: int | None = None
    os_distribution: str | None = None
    os_release: str | None = None
    os_version: str | None = None


class HostEvent(APIReply):
    inventory: HostInventory | None = None


class APIQueryHostMsg(APIQueryMessage):
    query_of: ClassVar[str] = "Host"
    api: ClassVar[ApiSpec | None] = ApiSpec(
        name="QueryHost",
        java_class=f"{_PKG}.APIQueryHostMsg",
        method="GET",
        path="/hosts",
        is_async=False,
        result_java_class=f"{_PKG}.APIQueryHostReply",
        summary="Query hosts (KVM hosts show username, sshPort and the OS they run)",
    )


class APIUpdateHostMsg(APIMessage):
    api_service: ClassVar[str] = HOST_SERVICE
    api: ClassVar[ApiSpec | None] = ApiSpec(
        name="UpdateHost",
        java_class=f"{_PKG}.APIUpdateHostMsg",
        method="PUT",
        path="/hosts/{uuid}/actions",
        body_key="updateHost",
        result_java_class=f"{_PKG}.APIUpdateHostEvent",
        summary="Change a host's name, description or management IP (reconnect to use a new IP)",
    )
    route_by: ClassVar[str | None] = "uuid"
    uuid: str
    name: str | None = Field(None, min_length=1, max_length=255)
    description: str | None = Field(None, max_length=2048)
    management_ip: str | None = Field(None, min_length=1, max_length=255)


class APIChangeHostStateMsg(APIMessage):
    api_service: ClassVar[str] = HOST_SERVICE
    api: ClassVar[ApiSpec | None] = ApiSpec(
        name="ChangeHostState",
        java_class=f"{_PKG}.APIChangeHostStateMsg",
        method="PUT",
        path="/hosts/{uuid}/actions",
        body_key="changeHostState",
        result_java_class=f"{_PKG}.APIChangeHostStateEvent",
        summary="Enable, disable or maintain a host (maintain: PreMaintenance, then "
        "Maintenance once its VMs are gone)",
    )
    route_by: ClassVar[str | None] = "uuid"
    uuid: str
    state_event: Literal["enable", "disable", "maintain"]


class APIReconnectHostMsg(APIMessage):
    api_service: ClassVar[str] = HOST_SERVICE
    api: ClassVar[ApiSpec | None] = ApiSpec(
        name="ReconnectHost",
        java_class=f"{_PKG}.APIReconnectHostMsg",
        method="PUT",
        path="/hosts/{uuid}/actions",
        body_key="reconnectHost",
        result_java_class=f"{_PKG}.APIReconnectHostEvent",
        summary="Connect to a host's agent again and re-read its capacity",
    )
    route_by: ClassVar[str | None] = "uuid"
    uuid: str


class APIDeleteHostMsg(APIMessage):
    api_service: ClassVar[str] = HOST_SERVICE
    api: ClassVar[ApiSpec | None] = ApiSpec(
        name="DeleteHost",
        java_class=f"{_PKG}.APIDeleteHostMsg",
        method="DELETE",
        path="/hosts/{uuid}",
        result_java_class=f"{_PKG}.APIDeleteHostEvent",
        summary="Delete a host and, by cascade, what belongs to it",
    )
    route_by: ClassVar[str | None] = "uuid"
    uuid: str
    delete_mode: Literal["Permissive", "Enforcing"] = "Permissive"


class APIGetHostAllocatorStrategiesMsg(APIMessage):
    api_service: ClassVar[str] = HOST_ALLOCATOR_SERVICE
    api: ClassVar[ApiSpec | None] = ApiSpec(
        name="GetHostAllocatorStrategies",
        java_class=f"{_ALLOCATOR_PKG}.APIGetHostAllocatorStrategiesMsg",
        method="GET",
        path="/hosts/allocators/strategies",
        is_async=False,
        result_java_class=f"{_ALLOCATOR_PKG}.APIGetHostAllocatorStrategiesReply",
        summary="Names of the host allocator strategies AllocateHost may use",
    )


class APIGetHostAllocatorStrategiesReply(APIReply):
    host_allocator_strategies: list[str] = Field(default_factory=list)


class DeleteHostMsg(NeedReplyMessage):
    """Internal: delete one host as part of its cluster's cascade, in the host's queue."""

    service: ClassVar[str] = HOST_SERVICE
    route_by: ClassVar[str | None] = "uuid"
    uuid: str
    delete_mode: Literal["Permissive", "Enforcing"] = "Permissive"


class ReconnectHostMsg(NeedReplyMessage):
    """Reconnect a host on its owner node, in its queue (the ping tracker, agent reports
    and the API use it). Answers the host's status afterwards: a failed reconnect leaves
    the host Disconnected and answers the cause as the error."""

    service: ClassVar[str] = HOST_SERVICE
    route_by: ClassVar[str | None] = "host_uuid"
    host_uuid: str
    reason: str = ""


class DisconnectHostMsg(NeedReplyMessage):
    """Mark a Connected host Disconnected now, in its queue on its owner node (its agent
    reported the host is going down); pings reconnect it when it answers again."""

    service: ClassVar[str] = HOST_SERVICE
    route_by: ClassVar[str | None] = "host_uuid"
    host_uuid: str
    reason: str = ""


class ReconnectHostReply(Reply):
    inventory: HostInventory | None = None


class ReserveHostCapacityMsg(NeedReplyMessage):
    """Take CPU and memory from a host's free capacity, in the host's queue on its owner
    node, so concurrent reservations never over-commit. HOST.1102 when the host no longer
    has room; HOST.1002 when it is no longer Enabled and Connected."""

    service: ClassVar[str] = HOST_SERVICE
    route_by: ClassVar[str | None] = "host_uuid"
    host_uuid: str
    cpu_num: int = Field(ge=0)
    memory_size: int = Field(ge=0)


class HostCapacityReply(Reply):
    """What a host has free after a reserve or a return."""

    available_cpu: int = 0
    available_memory: int = 0


class HostStatusChangedEvent(Event):
    """A host's status changed (Connecting/Connected/Disconnected); published by the
    host's owner node. ``reason`` says why a host left Connected."""

    service: ClassVar[str] = HOST_SERVICE
    host_uuid: str
    old_status: str
    new_status: str
    reason: str = ""


class VmStateChangedOnHostEvent(Event):
    """An agent reported (``/kvm/reportvmstate``) that a VM changed state on its own. The
    state is ZStack's (Running, Stopped, Paused, ...), mapped from the agent's."""

    service: ClassVar[str] = HOST_SERVICE
    host_uuid: str
    vm_uuid: str
    state: str
