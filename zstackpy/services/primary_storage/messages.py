"""The primary storage domain's contract: API messages, inventories, error codes, and the
internal messages other services send (capacity allocation for volumes and VMs).

Every storage type (local, NFS, ...) is a plugin: it declares its ``Add...PrimaryStorage``
API as a subclass of ``APIAddPrimaryStorageMsg`` and registers a ``PrimaryStorageBackend``
(``extensions.py``); everything else is the same for all types.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import ClassVar, Literal

from pydantic import BaseModel, Field

from zstackpy.api.messages import (
    APICreateMessage,
    APIMessage,
    APIQueryMessage,
    APIReply,
    ApiSpec,
    Inventory,
)
from zstackpy.core.bus.message import NeedReplyMessage, Reply

PRIMARY_STORAGE_SERVICE = "primaryStorage"
PRIMARY_STORAGE_CAPACITY_SERVICE = "primaryStorageCapacity"
PRIMARY_STORAGE_TYPE = "PrimaryStorageVO"  # the resource type (ownership, tags, cascade)
_PKG = "org.zstack.header.storage.primary"


class PrimaryStorageErr(StrEnum):
    """Codes of the primary storage domain (listed in docs/errors.md)."""

    INVALID_URL = "PS.1001"  # the url has not the form the storage type needs
    WRONG_ZONE = "PS.1002"  # the cluster is in another zone than the storage
    ALREADY_ATTACHED = "PS.1003"  # the storage is already attached to that cluster
    NOT_ATTACHED = "PS.1004"  # detach from a cluster the storage is not attached to
    STILL_ATTACHED = "PS.1005"  # delete (or url change) while attached to clusters
    IN_USE = "PS.1006"  # detach refused by a PrimaryStorageDetachExtension (volumes)
    HOST_PREPARE_FAILED = "PS.1007"  # mount/init on a host failed; details name the host
    INSUFFICIENT_CAPACITY = "PS.1008"  # a reservation larger than what is available
    NO_CANDIDATE = "PS.1009"  # no primary storage fits an allocation request
    WRONG_STATE = "PS.1010"  # the storage's state or status does not allow the operation
    UNKNOWN_TYPE = "PS.1011"  # no plugin serves this storage type


class PrimaryStorageState(StrEnum):
    ENABLED = "Enabled"
    DISABLED = "Disabled"
    MAINTENANCE = "Maintenance"


class PrimaryStorageStatus(StrEnum):
    CONNECTING = "Connecting"
    CONNECTED = "Connected"
    DISCONNECTED = "Disconnected"


# ----- inventories ---------------------------------------------------------------------


class PrimaryStorageInventory(Inventory):
    uuid: str
    zone_uuid: str
    name: str
    url: str
    description: str | None = None
    total_capacity: int = 0
    available_capacity: int = 0
    total_physical_capacity: int = 0
    available_physical_capacity: int = 0
    system_used_capacity: int = 0
    type: str
    state: str
    status: str
    mount_path: str | None = None
    create_date: datetime
    last_op_date: datetime
    attached_cluster_uuids: list[str] = Field(default_factory=list)


class PrimaryStorageClusterRefInventory(Inventory):
    id: int
    cluster_uuid: str
    primary_storage_uuid: str
    create_date: datetime
    last_op_date: datetime


class LocalStorageHostRefInventory(Inventory):
    primary_storage_uuid: str
    host_uuid: str
    total_capacity: int
    available_capacity: int
    total_physical_capacity: int
    available_physical_capacity: int
    create_date: datetime
    last_op_date: datetime


class PrimaryStorageEvent(APIReply):
    inventory: PrimaryStorageInventory | None = None


# ----- API -----------------------------------------------------------------------------


class APIAddPrimaryStorageMsg(APICreateMessage):
    """Base of every type's Add API (ZStack's APIAddPrimaryStorageMsg). A plugin subclasses
    it with its ApiSpec and ``storage_type``; the primary storage service handles them all,
    checking ``url`` with the type's backend."""

    api_service: ClassVar[str] = PRIMARY_STORAGE_SERVICE
    route_by: ClassVar[str | None] = "resource_uuid"
    storage_type: ClassVar[str] = ""

    url: str = Field(min_length=1, max_length=2048)
    name: str = Field(min_length=1, max_length=255)
    description: str | None = Field(None, max_length=2048)
    type: str | None = None  # ZStack clients may send it; the API decides the type
    zone_uuid: str

    def requested_mount_path(self) -> str | None:
        """The mount path the caller asked for, for types that have one."""
        return None


class APIUpdatePrimaryStorageMsg(APIMessage):
    api_service: ClassVar[str] = PRIMARY_STORAGE_SERVICE
    api: ClassVar[ApiSpec | None] = ApiSpec(
        name="UpdatePrimaryStorage",
        java_class=f"{_PKG}.APIUpdatePrimaryStorageMsg",
        method="PUT",
        path="/primary-storage/{uuid}/actions",
        body_key="updatePrimaryStorage",
        result_java_class=f"{_PKG}.APIUpdatePrimaryStorageEvent",
        summary="Change a primary storage's name, description or url (url: while detached)",
    )
    route_by: ClassVar[str | None] = "uuid"
    uuid: str
    name: str | None = Field(None, min_length=1, max_length=255)
    description: str | None = Field(None, max_length=2048)
    url: str | None = Field(None, min_length=1, max_length=2048)


class APIChangePrimaryStorageStateMsg(APIMessage):
    api_service: ClassVar[str] = PRIMARY_STORAGE_SERVICE
    api: ClassVar[ApiSpec | None] = ApiSpec(
        name="ChangePrimaryStorageState",
        java_class=f"{_PKG}.APIChangePrimaryStorageStateMsg",
        method="PUT",
        path="/primary-storage/{uuid}/actions",
        body_key="changePrimaryStorageState",
        result_java_class=f"{_PKG}.APIChangePrimaryStorageStateEvent",
        summary="Enable, disable or put a primary storage into maintenance",
    )
    route_by: ClassVar[str | None] = "uuid"
    uuid: str
    state_event: Literal["enable", "disable", "maintain"]


class APIReconnectPrimaryStorageMsg(APIMessage):
    api_service: ClassVar[str] = PRIMARY_STORAGE_SERVICE
    api: ClassVar[ApiSpec | None] = ApiSpec(
        name="ReconnectPrimaryStorage",
        java_class=f"{_PKG}.APIReconnectPrimaryStorageMsg",
        method="PUT",
        path="/primary-storage/{uuid}/actions",
        body_key="reconnectPrimaryStorage",
        result_java_class=f"{_PKG}.APIReconnectPrimaryStorageEvent",
        summary="Mount or init the storage again on every connected host; refresh capacity",
    )
    route_by: ClassVar[str | None] = "uuid"
    uuid: str


class APIDeletePrimaryStorageMsg(APIMessage):
    api_service: ClassVar[str] = PRIMARY_STORAGE_SERVICE
    api: ClassVar[ApiSpec | None] = ApiSpec(
        name="DeletePrimaryStorage",
        java_class=f"{_PKG}.APIDeletePrimaryStorageMsg",
        method="DELETE",
        path="/primary-storage/{uuid}",
        result_java_class=f"{_PKG}.APIDeletePrimaryStorageEvent",
        summary="Delete a primary storage that is attached to no cluster",
    )
    route_by: ClassVar[str | None] = "uuid"
    uuid: str
    delete_mode: Literal["Permissive", "Enforcing"] = "Permissive"


class APIAttachPrimaryStorageToClusterMsg(APIMessage):
    api_service: ClassVar[str] = PRIMARY_STORAGE_SERVICE
    api: ClassVar[ApiSpec | None] = ApiSpec(
        name="AttachPrimaryStorageToCluster",
        java_class=f"{_PKG}.APIAttachPrimaryStorageToClusterMsg",
        method="POST",
        path="/clusters/{clusterUuid}/primary-storage/{primaryStorageUuid}",
        body_key="params",
        result_java_class=f"{_PKG}.APIAttachPrimaryStorageToClusterEvent",
        summary="Attach a primary storage to a cluster of its zone (mount/init on its hosts)",
    )
    route_by: ClassVar[str | None] = "primary_storage_uuid"
    cluster_uuid: str
    primary_storage_uuid: str


class APIDetachPrimaryStorageFromClusterMsg(APIMessage):
    api_service: ClassVar[str] = PRIMARY_STORAGE_SERVICE
    api: ClassVar[ApiSpec | None] = ApiSpec(
        name="DetachPrimaryStorageFromCluster",
        java_class=f"{_PKG}.APIDetachPrimaryStorageFromClusterMsg",
        method="DELETE",
        path="/clusters/{clusterUuid}/primary-storage/{primaryStorageUuid}",
        result_java_class=f"{_PKG}.APIDetachPrimaryStorageFromClusterEvent",
        summary="Detach a primary storage from a cluster (unmount from its hosts)",
    )
    route_by: ClassVar[str | None] = "primary_storage_uuid"
    cluster_uuid: str
    primary_storage_uuid: str


class APIQueryPrimaryStorageMsg(APIQueryMessage):
    query_of: ClassVar[str] = "PrimaryStorage"
    api: ClassVar[ApiSpec | None] = ApiSpec(
        name="QueryPrimaryStorage",
        java_class=f"{_PKG}.APIQueryPrimaryStorageMsg",
        method="GET",
        path="/primary-storage",
        is_async=False,
        result_java_class=f"{_PKG}.APIQueryPrimaryStorageReply",
        summary="Query primary storage",
    )


class APIGetPrimaryStorageCapacityMsg(APIMessage):
    """The summed capacity of the storage chosen by zone, cluster or uuid (or ``all``)."""

    api_service: ClassVar[str] = PRIMARY_STORAGE_CAPACITY_SERVICE
    api: ClassVar[ApiSpec | None] = ApiSpec(
        name="GetPrimaryStorageCapacity",
        java_class=f"{_PKG}.APIGetPrimaryStorageCapacityMsg",
        method="GET",
        path="/primary-storage/capacities",
        is_async=False,
        result_java_class=f"{_PKG}.APIGetPrimaryStorageCapacityReply",
        summary="Sum the capacity of primary storage by zone, cluster or uuid",
    )
    zone_uuids: list[str] = Field(default_factory=list)
    cluster_uuids: list[str] = Field(default_factory=list)
    primary_storage_uuids: list[str] = Field(default_factory=list)
    all: bool = False


class APIGetPrimaryStorageCapacityReply(APIReply):
    total_capacity: int = 0
    available_capacity: int = 0
    total_physical_capacity: int = 0
    available_physical_capacity: int = 0


# ----- internal: lifecycle (cascades) --------------------------------------------------


class DeletePrimaryStorageMsg(NeedReplyMessage):
    """Delete one storage as part of its zone's cascade, in the storage's queue; detaches
    whatever clusters it is still attached to first."""

    service: ClassVar[str] = PRIMARY_STORAGE_SERVICE
    route_by: ClassVar[str | None] = "uuid"
    uuid: str
    delete_mode: Literal["Permissive", "Enforcing"] = "Permissive"


class DetachPrimaryStorageMsg(NeedReplyMessage):
    """Detach a storage from a cluster that is being deleted: no extension may refuse, and
    unmount failures (hosts already gone) are only logged."""

    service: ClassVar[str] = PRIMARY_STORAGE_SERVICE
    route_by: ClassVar[str | None] = "primary_storage_uuid"
    primary_storage_uuid: str
    cluster_uuid: str


# ----- internal: capacity --------------------------------------------------------------


class AllocatePrimaryStorageCapacityMsg(NeedReplyMessage):
    """Choose a primary storage for ``size`` bytes and reserve them there (in the storage's
    capacity queue, so concurrent reservations never overdraw it).

    With ``primary_storage_uuid`` only that storage is tried; otherwise the candidates are
    the Enabled, Connected storages attached to ``cluster_uuids``, most free space first.
    Host-local storage (local storage) is a candidate only with ``host_uuid`` (the host
    whose disk the volume goes on; pass its cluster in ``cluster_uuids`` too), and the
    reservation is taken from that host's books as well.

    Answers AllocatePrimaryStorageCapacityReply, or PS.1009 (no candidate fits) /
    PS.1008 (the named storage lacks the space). Give it back with
    ReturnPrimaryStorageCapacityMsg."""

    service: ClassVar[str] = PRIMARY_STORAGE_CAPACITY_SERVICE
    route_by: ClassVar[str | None] = "primary_storage_uuid"
    primary_storage_uuid: str | None = None
    cluster_uuids: list[str] = Field(default_factory=list)
    host_uuid: str | None = None
    size: int = Field(ge=0)
    storage_types: list[str] = Field(default_factory=list)  # empty: any type
    excluded_primary_storage_uuids: list[str] = Field(default_factory=list)


class AllocatePrimaryStorageCapacityReply(Reply):
    primary_storage_uuid: str = ""
    storage_type: str = ""
    host_uuid: str | None = None  # set when the reservation is on a host's local disk
    size: int = 0


class ReservePrimaryStorageCapacityMsg(NeedReplyMessage):
    """Reserve ``size`` bytes on one storage (and on ``host_uuid``'s books for host-local
    storage) in its capacity queue. Used by the allocation; PS.1008 when it lacks space,
    PS.1010 when the storage is not Enabled and Connected."""

    service: ClassVar[str] = PRIMARY_STORAGE_CAPACITY_SERVICE
    route_by: ClassVar[str | None] = "primary_storage_uuid"
    primary_storage_uuid: str
    host_uuid: str | None = None
    size: int = Field(ge=0)


class ReturnPrimaryStorageCapacityMsg(NeedReplyMessage):
    """Give back what an allocation reserved (a failed creation, a deleted volume).
    Available capacity never grows past the total."""

    service: ClassVar[str] = PRIMARY_STORAGE_CAPACITY_SERVICE
    route_by: ClassVar[str | None] = "primary_storage_uuid"
    primary_storage_uuid: str
    host_uuid: str | None = None
    size: int = Field(ge=0)


class HostStorageReport(BaseModel):
    """One host's answer to a mount or init, inside RecordHostCapacityMsg."""

    host_uuid: str
    total_capacity: int = Field(ge=0)
    available_capacity: int = Field(ge=0)


class RecordHostCapacityMsg(NeedReplyMessage):
    """Book what hosts' agents reported after a mount or init (attach, host connect,
    reconnect). Host-local storage keeps one row per host and sums them; shared storage
    takes the first report as the whole storage's capacity. Reporting a host again
    refreshes its numbers, never counts it twice."""

    service: ClassVar[str] = PRIMARY_STORAGE_CAPACITY_SERVICE
    route_by: ClassVar[str | None] = "primary_storage_uuid"
    primary_storage_uuid: str
    reports: list[HostStorageReport]


class ForgetHostCapacityMsg(NeedReplyMessage):
    """Drop hosts' books from a host-local storage (detach, host delete); its totals
    shrink accordingly. Hosts without books are ignored."""

    service: ClassVar[str] = PRIMARY_STORAGE_CAPACITY_SERVICE
    route_by: ClassVar[str | None] = "primary_storage_uuid"
    primary_storage_uuid: str
    host_uuids: list[str]


class ListHostCapacityMsg(NeedReplyMessage):
    """The per-host books of a host-local storage (all hosts, or ``host_uuids``)."""

    service: ClassVar[str] = PRIMARY_STORAGE_CAPACITY_SERVICE
    primary_storage_uuid: str
    host_uuids: list[str] = Field(default_factory=list)


class ListHostCapacityReply(Reply):
    refs: list[LocalStorageHostRefInventory] = Field(default_factory=list)
