"""L3 network API messages (the network itself and its DNS servers)."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from zstackpy.api.messages import APICreateMessage, APIMessage, APIQueryMessage, APIReply, ApiSpec
from zstackpy.core.bus.message import NeedReplyMessage
from zstackpy.services.network.inventories import L3NetworkInventory
from zstackpy.services.network.messages import L3_NETWORK_SERVICE

_PKG = "org.zstack.header.network.l3"

Category = Literal["Public", "Private", "System"]


class L3NetworkEvent(APIReply):
    inventory: L3NetworkInventory | None = None


class APICreateL3NetworkMsg(APICreateMessage):
    api_service: ClassVar[str] = L3_NETWORK_SERVICE
    api: ClassVar[ApiSpec | None] = ApiSpec(
        name="CreateL3Network",
        java_class=f"{_PKG}.APICreateL3NetworkMsg",
        method="POST",
        path="/l3-networks",
        body_key="params",
        result_java_class=f"{_PKG}.APICreateL3NetworkEvent",
        creates="L3NetworkVO",
        summary="Create an L3 network on an L2 network",
    )
    route_by: ClassVar[str | None] = "resource_uuid"
    name: str = Field(min_length=1, max_length=255)
    description: str | None = Field(None, max_length=2048)
    type: Literal["L3BasicNetwork"] = "L3BasicNetwork"
    l2_network_uuid: str
    category: Category = "Private"
    ip_version: Literal[4] = 4
    system: bool = False
    dns_domain: str | None = Field(None, max_length=255)
    enable_ipam: bool = Field(True, alias="enableIPAM")


class APIUpdateL3NetworkMsg(APIMessage):
    api_service: ClassVar[str] = L3_NETWORK_SERVICE
    api: ClassVar[ApiSpec | None] = ApiSpec(
        name="UpdateL3Network",
        java_class=f"{_PKG}.APIUpdateL3NetworkMsg",
        method="PUT",
        path="/l3-networks/{uuid}/actions",
        body_key="updateL3Network",
        result_java_class=f"{_PKG}.APIUpdateL3NetworkEvent",
        summary="Change an L3 network's name, description, DNS domain, category or system flag",
    )
    route_by: ClassVar[str | None] = "uuid"
    uuid: str
    name: str | None = Field(None, min_length=1, max_length=255)
    description: str | None = Field(None, max_length=2048)
    dns_domain: str | None = Field(None, max_length=255)
    category: Category | None = None
    system: bool | None = None


class APIChangeL3NetworkStateMsg(APIMessage):
    api_service: ClassVar[str] = L3_NETWORK_SERVICE
    api: ClassVar[ApiSpec | None] = ApiSpec(
        name="ChangeL3NetworkState",
        java_class=f"{_PKG}.APIChangeL3NetworkStateMsg",
        method="PUT",
        path="/l3-networks/{uuid}/actions",
        body_key="changeL3NetworkState",
        result_java_class=f"{_PKG}.APIChangeL3NetworkStateEvent",
        summary="Enable or disable an L3 network",
    )
    route_by: ClassVar[str | None] = "uuid"
    uuid: str
    state_event: Literal["enable", "disable"]


class APIDeleteL3NetworkMsg(APIMessage):
    api_service: ClassVar[str] = L3_NETWORK_SERVICE
    api: ClassVar[ApiSpec | None] = ApiSpec(
        name="DeleteL3Network",
        java_class=f"{_PKG}.APIDeleteL3NetworkMsg",
        method="DELETE",
        path="/l3-networks/{uuid}",
        result_java_class=f"{_PKG}.APIDeleteL3NetworkEvent",
        summary="Delete an L3 network and its IP ranges (refused while its IPs are in use)",
    )
    route_by: ClassVar[str | None] = "uuid"
    uuid: str
    delete_mode: Literal["Permissive", "Enforcing"] = "Permissive"


class APIAddDnsToL3NetworkMsg(APIMessage):
    api_service: ClassVar[str] = L3_NETWORK_SERVICE
    api: ClassVar[ApiSpec | None] = ApiSpec(
        name="AddDnsToL3Network",
        java_class=f"{_PKG}.APIAddDnsToL3NetworkMsg",
        method="POST",
        path="/l3-networks/{l3NetworkUuid}/dns",
        body_key="params",
        result_java_class=f"{_PKG}.APIAddDnsToL3NetworkEvent",
        summary="Add a DNS server to an L3 network (after the ones it has)",
    )
    route_by: ClassVar[str | None] = "l3_network_uuid"
    l3_network_uuid: str
    dns: str = Field(min_length=1, max_length=255)


class APIRemoveDnsFromL3NetworkMsg(APIMessage):
    api_service: ClassVar[str] = L3_NETWORK_SERVICE
    api: ClassVar[ApiSpec | None] = ApiSpec(
        name="RemoveDnsFromL3Network",
        java_class=f"{_PKG}.APIRemoveDnsFromL3NetworkMsg",
        method="DELETE",
        path="/l3-networks/{l3NetworkUuid}/dns/{dns}",
        result_java_class=f"{_PKG}.APIRemoveDnsFromL3NetworkEvent",
        summary="Remove a DNS server from an L3 network",
    )
    route_by: ClassVar[str | None] = "l3_network_uuid"
    l3_network_uuid: str
    dns: str


class APIQueryL3NetworkMsg(APIQueryMessage):
    query_of: ClassVar[str] = "L3Network"
    api: ClassVar[ApiSpec | None] = ApiSpec(
        name="QueryL3Network",
        java_class=f"{_PKG}.APIQueryL3NetworkMsg",
        method="GET",
        path="/l3-networks",
        is_async=False,
        result_java_class=f"{_PKG}.APIQueryL3NetworkReply",
        summary="Query L3 networks",
    )


# ----- internal ----------------------------------------------------------------------


class DeleteL3NetworkMsg(NeedReplyMessage):
    """Delete one L3 network as part of its L2's cascade, in the L3's queue."""

    service: ClassVar[str] = L3_NETWORK_SERVICE
    route_by: ClassVar[str | None] = "uuid"
    uuid: str
    delete_mode: Literal["Permissive", "Enforcing"] = "Permissive"
