"""The cluster service's contract: API messages, inventory, internal messages."""

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

CLUSTER_SERVICE = "cluster"
_PKG = "org.zstack.header.cluster"

HypervisorType = Literal["KVM", "Simulator", "baremetal", "baremetal2"]


class ClusterInventory(Inventory):
    uuid: str
    name: str
    description: str | None = None
    state: str
    hypervisor_type: str
    zone_uuid: str
    type: str
    architecture: str | None = None
    create_date: datetime
    last_op_date: datetime


class ClusterEvent(APIReply):
    inventory: ClusterInventory | None = None


class APICreateClusterMsg(APICreateMessage):
    api_service: ClassVar[str] = CLUSTER_SERVICE
    api: ClassVar[ApiSpec | None] = ApiSpec(
        name="CreateCluster",
        java_class=f"{_PKG}.APICreateClusterMsg",
        method="POST",
        path="/clusters",
        body_key="params",
        result_java_class=f"{_PKG}.APICreateClusterEvent",
        creates="ClusterVO",
        summary="Create a cluster in a zone",
    )
    route_by: ClassVar[str | None] = "resource_uuid"
    zone_uuid: str
    name: str = Field(min_length=1, max_length=255)
    description: str | None = Field(None, max_length=2048)
    hypervisor_type: HypervisorType
    type: str = "zstack"
    architecture: Literal["x86_64", "aarch64", "mips64el", "loongarch64"] | None = None


class APIUpdateClusterMsg(APIMessage):
    api_service: ClassVar[str] = CLUSTER_SERVICE
    api: ClassVar[ApiSpec | None] = ApiSpec(
        name="UpdateCluster",
        java_class=f"{_PKG}.APIUpdateClusterMsg",
        method="PUT",
        path="/clusters/{uuid}/actions",
        body_key="updateCluster",
        result_java_class=f"{_PKG}.APIUpdateClusterEvent",
        summary="Change a cluster's name or description",
    )
    route_by: ClassVar[str | None] = "uuid"
    uuid: str
    name: str | None = Field(None, min_length=1, max_length=255)
    description: str | None = Field(None, max_length=2048)


class APIChangeClusterStateMsg(APIMessage):
    api_service: ClassVar[str] = CLUSTER_SERVICE
    api: ClassVar[ApiSpec | None] = ApiSpec(
        name="ChangeClusterState",
        java_class=f"{_PKG}.APIChangeClusterStateMsg",
        method="PUT",
        path="/clusters/{uuid}/actions",
        body_key="changeClusterState",
        result_java_class=f"{_PKG}.APIChangeClusterStateEvent",
        summary="Enable or disable a cluster",
    )
    route_by: ClassVar[str | None] = "uuid"
    uuid: str
    state_event: Literal["enable", "disable"]


class APIDeleteClusterMsg(APIMessage):
    api_service: ClassVar[str] = CLUSTER_SERVICE
    api: ClassVar[ApiSpec | None] = ApiSpec(
        name="DeleteCluster",
        java_class=f"{_PKG}.APIDeleteClusterMsg",
        method="DELETE",
        path="/clusters/{uuid}",
        result_java_class=f"{_PKG}.APIDeleteClusterEvent",
        summary="Delete a cluster and, by cascade, everything in it",
    )
    route_by: ClassVar[str | None] = "uuid"
    uuid: str
    delete_mode: Literal["Permissive", "Enforcing"] = "Permissive"


class APIQueryClusterMsg(APIQueryMessage):
    query_of: ClassVar[str] = "Cluster"
    api: ClassVar[ApiSpec | None] = ApiSpec(
        name="QueryCluster",
        java_class=f"{_PKG}.APIQueryClusterMsg",
        method="GET",
        path="/clusters",
        is_async=False,
        result_java_class=f"{_PKG}.APIQueryClusterReply",
        summary="Query clusters",
    )


class DeleteClusterMsg(NeedReplyMessage):
    """Internal: delete one cluster as part of its zone's cascade, in the cluster's queue."""

    service: ClassVar[str] = CLUSTER_SERVICE
    route_by: ClassVar[str | None] = "uuid"
    uuid: str
    delete_mode: Literal["Permissive", "Enforcing"] = "Permissive"
