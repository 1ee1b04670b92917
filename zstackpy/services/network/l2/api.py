"""L2 network API messages, as ZStack's clients send them."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from zstackpy.api.messages import APICreateMessage, APIMessage, APIQueryMessage, APIReply, ApiSpec
from zstackpy.core.bus.message import NeedReplyMessage
from zstackpy.services.network.inventories import L2NetworkInventory
from zstackpy.services.network.messages import L2_NETWORK_SERVICE

_PKG = "org.zstack.header.network.l2"
_CREATE_EVENT = f"{_PKG}.APICreateL2NetworkEvent"


class L2NetworkEvent(APIReply):
    inventory: L2NetworkInventory | None = None


class _CreateL2Network(APICreateMessage):
    """What both L2 creates take. ``type`` is accepted for ZStack's clients and ignored:
    the API called decides the type."""

    api_service: ClassVar[str] = L2_NETWORK_SERVICE
    route_by: ClassVar[str | None] = "resource_uuid"
    name: str = Field(min_length=1, max_length=255)
    description: str | None = Field(None, max_length=2048)
    zone_uuid: str
    physical_interface: str = Field(min_length=1, max_length=255, pattern=r"^[A-Za-z0-9_.:-]+$")
    type: str | None = None
    v_switch_type: Literal["LinuxBridge"] = "LinuxBridge"
    isolated: bool = False


class APICreateL2NoVlanNetworkMsg(_CreateL2Network):
    api: ClassVar[ApiSpec | None] = ApiSpec(
        name="CreateL2NoVlanNetwork",
        java_class=f"{_PKG}.APICreateL2NoVlanNetworkMsg",
        method="POST",
        path="/l2-networks/no-vlan",
        body_key="params",
        result_java_class=_CREATE_EVENT,
        creates="L2NetworkVO",
        summary="Create an L2 network on a physical interface, without vlan tagging",
    )


class APICreateL2VlanNetworkMsg(_CreateL2Network):
    api: ClassVar[ApiSpec | None] = ApiSpec(
        name="CreateL2VlanNetwork",
        java_class=f"{_PKG}.APICreateL2VlanNetworkMsg",
        method="POST",
        path="/l2-networks/vlan",
        body_key="params",
        result_java_class=_CREATE_EVENT,
        creates="L2NetworkVO",
        summary="Create an L2 network of one vlan on a physical interface",
    )
    vlan: int = Field(ge=1, le=4094)


class APIUpdateL2NetworkMsg(APIMessage):
    api_service: ClassVar[str] = L2_NETWORK_SERVICE
    api: ClassVar[ApiSpec | None] = ApiSpec(
        name="UpdateL2Network",
        java_class=f"{_PKG}.APIUpdateL2NetworkMsg",
        method="PUT",
        path="/l2-networks/{uuid}/actions",
        body_key="updateL2Network",
        result_java_class=f"{_PKG}.APIUpdateL2NetworkEvent",
        summary="Change an L2 network's name or description",
    )
    route_by: ClassVar[str | None] = "uuid"
    uuid: str
    name: str | None = Field(None, min_length=1, max_length=255)
    description: str | None = Field(None, max_length=2048)


class APIDeleteL2NetworkMsg(APIMessage):
    api_service: ClassVar[str] = L2_NETWORK_SERVICE
    api: ClassVar[ApiSpec | None] = ApiSpec(
        name="DeleteL2Network",
        java_class=f"{_PKG}.APIDeleteL2NetworkMsg",
        method="DELETE",
        path="/l2-networks/{uuid}",
        result_java_class=f"{_PKG}.APIDeleteL2NetworkEvent",
        summary="Delete an L2 network and its L3 networks (refused while their IPs are used)",
    )
    route_by: ClassVar[str | None] = "uuid"
    uuid: str
    delete_mode: Literal["Permissive", "Enforcing"] = "Permissive"


class APIAttachL2NetworkToClusterMsg(APIMessage):
    api_service: ClassVar[str] = L2_NETWORK_SERVICE
    api: ClassVar[ApiSpec | None] = ApiSpec(
        name="AttachL2NetworkToCluster",
        java_class=f"{_PKG}.APIAttachL2NetworkToClusterMsg",
        method="POST",
        path="/l2-networks/{l2NetworkUuid}/clusters/{clusterUuid}",
        result_java_class=f"{_PKG}.APIAttachL2NetworkToClusterEvent",
        summary="Attach an L2 network to a cluster: every connected host gets its bridge",
    )
    route_by: ClassVar[str | None] = "l2_network_uuid"
    l2_network_uuid: str
    cluster_uuid: str
    l2_provider_type: Literal["LinuxBridge"] = "LinuxBridge"


class APIDetachL2NetworkFromClusterMsg(APIMessage):
    api_service: ClassVar[str] = L2_NETWORK_SERVICE
    api: ClassVar[ApiSpec | None] = ApiSpec(
        name="DetachL2NetworkFromCluster",
        java_class=f"{_PKG}.APIDetachL2NetworkFromClusterMsg",
        method="DELETE",
        path="/l2-networks/{l2NetworkUuid}/clusters/{clusterUuid}",
        result_java_class=f"{_PKG}.APIDetachL2NetworkFromClusterEvent",
        summary="Detach an L2 network from a cluster",
    )
    route_by: ClassVar[str | None] = "l2_network_uuid"
    l2_network_uuid: str
    cluster_uuid: str


class APIQueryL2NetworkMsg(APIQueryMessage):
    query_of: ClassVar[str] = "L2Network"
    api: ClassVar[ApiSpec | None] = ApiSpec(
        name="QueryL2Network",
        java_class=f"{_PKG}.APIQueryL2NetworkMsg",
        method="GET",
        path="/l2-networks",
        is_async=False,
        result_java_class=f"{_PKG}.APIQueryL2NetworkReply",
        summary="Query L2 networks",
    )


class APIQueryL2VlanNetworkMsg(APIQueryMessage):
    query_of: ClassVar[str] = "L2VlanNetwork"
    api: ClassVar[ApiSpec | None] = ApiSpec(
        name="QueryL2VlanNetwork",
        java_class=f"{_PKG}.APIQueryL2VlanNetworkMsg",
        method="GET",
        path="/l2-networks/vlan",
        is_async=False,
        result_java_class=f"{_PKG}.APIQueryL2VlanNetworkReply",
        summary="Query L2 Vlan networks",
    )


# ----- internal ----------------------------------------------------------------------


class DeleteL2NetworkMsg(NeedReplyMessage):
    """Delete one L2 network as part of its zone's cascade, in the L2's queue."""

    service: ClassVar[str] = L2_NETWORK_SERVICE
    route_by: ClassVar[str | None] = "uuid"
    uuid: str
    delete_mode: Literal["Permissive", "Enforcing"] = "Permissive"


class DetachL2NetworkMsg(NeedReplyMessage):
    """Detach an L2 network from a cluster being deleted, in the L2's queue. Idempotent."""

    service: ClassVar[str] = L2_NETWORK_SERVICE
    route_by: ClassVar[str | None] = "l2_network_uuid"
    l2_network_uuid: str
    cluster_uuid: str
