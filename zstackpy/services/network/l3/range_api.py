"""IP range API messages, and the internal messages that put range changes in the right
queue: adds in the L2's (overlaps are checked across every L3 of the L2), deletes in the
L3's (so no allocation picks an address of a range being deleted)."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import BaseModel, Field

from zstackpy.api.messages import (
    APICreateMessage,
    APIMessage,
    APIQueryMessage,
    APIReply,
    ApiSpec,
    AuthContext,
)
from zstackpy.core.bus.message import NeedReplyMessage, Reply
from zstackpy.services.network.inventories import IpRangeInventory

IP_RANGE_SERVICE = "ipRange"
_PKG = "org.zstack.header.network.l3"

IpRangeType = Literal["Normal", "AddressPool"]


class IpRangeEvent(APIReply):
    inventory: IpRangeInventory | None = None


class IpRangesEvent(APIReply):
    """AddIpRangeByNetworkCidr: the first range, and every range (two when the gateway
    splits the network)."""

    inventory: IpRangeInventory | None = None
    inventories: list[IpRangeInventory] | None = None


class _AddIpRange(APICreateMessage):
    api_service: ClassVar[str] = IP_RANGE_SERVICE
    route_by: ClassVar[str | None] = "l3_network_uuid"
    l3_network_uuid: str
    name: str = Field(min_length=1, max_length=255)
    description: str | None = Field(None, max_length=2048)
    gateway: str | None = None
    ip_range_type: IpRangeType = "Normal"


class APIAddIpRangeMsg(_AddIpRange):
    api: ClassVar[ApiSpec | None] = ApiSpec(
        name="AddIpRange",
        java_class=f"{_PKG}.APIAddIpRangeMsg",
        method="POST",
        path="/l3-networks/{l3NetworkUuid}/ip-ranges",
        body_key="params",
        result_java_class=f"{_PKG}.APIAddIpRangeEvent",
        creates="IpRangeVO",
        summary="Add a range of addresses to an L3 network",
    )
    start_ip: str
    end_ip: str
    netmask: str


class APIAddIpRangeByNetworkCidrMsg(_AddIpRange):
    api: ClassVar[ApiSpec | None] = ApiSpec(
        name="AddIpRangeByNetworkCidr",
        java_class=f"{_PKG}.APIAddIpRangeByNetworkCidrMsg",
        method="POST",
        path="/l3-networks/{l3NetworkUuid}/ip-ranges/by-cidr",
        body_key="params",
        result_java_class=f"{_PKG}.APIAddIpRangeByNetworkCidrEvent",
        creates="IpRangeVO",
        summary="Add every host address of a network CIDR but the gateway to an L3 network",
    )
    network_cidr: str


class APIUpdateIpRangeMsg(APIMessage):
    api_service: ClassVar[str] = IP_RANGE_SERVICE
    api: ClassVar[ApiSpec | None] = ApiSpec(
        name="UpdateIpRange",
        java_class=f"{_PKG}.APIUpdateIpRangeMsg",
        method="PUT",
        path="/l3-networks/ip-ranges/{uuid}/actions",
        body_key="updateIpRange",
        result_java_class=f"{_PKG}.APIUpdateIpRangeEvent",
        summary="Change an IP range's name or description",
    )
    route_by: ClassVar[str | None] = "uuid"
    uuid: str
    name: str | None = Field(None, min_length=1, max_length=255)
    description: str | None = Field(None, max_length=2048)


class APIDeleteIpRangeMsg(APIMessage):
    api_service: ClassVar[str] = IP_RANGE_SERVICE
    api: ClassVar[ApiSpec | None] = ApiSpec(
        name="DeleteIpRange",
        java_class=f"{_PKG}.APIDeleteIpRangeMsg",
        method="DELETE",
        path="/l3-networks/ip-ranges/{uuid}",
        result_java_class=f"{_PKG}.APIDeleteIpRangeEvent",
        summary="Delete an IP range (refused while addresses of it are in use)",
    )
    route_by: ClassVar[str | None] = "uuid"
    uuid: str
    delete_mode: Literal["Permissive", "Enforcing"] = "Permissive"


class APIQueryIpRangeMsg(APIQueryMessage):
    query_of: ClassVar[str] = "IpRange"
    api: ClassVar[ApiSpec | None] = ApiSpec(
        name="QueryIpRange",
        java_class=f"{_PKG}.APIQueryIpRangeMsg",
        method="GET",
        path="/l3-networks/ip-ranges",
        is_async=False,
        result_java_class=f"{_PKG}.APIQueryIpRangeReply",
        summary="Query IP ranges",
    )


class APIQueryIpAddressMsg(APIQueryMessage):
    query_of: ClassVar[str] = "UsedIp"
    api: ClassVar[ApiSpec | None] = ApiSpec(
        name="QueryIpAddress",
        java_class=f"{_PKG}.APIQueryIpAddressMsg",
        method="GET",
        path="/l3-networks/ip-address",
        is_async=False,
        result_java_class=f"{_PKG}.APIQueryIpAddressReply",
        summary="Query allocated (used) IP addresses",
    )


# ----- internal ----------------------------------------------------------------------


class NewIpRange(BaseModel):
    """One checked range to store (columns of IpRangeVO)."""

    uuid: str
    name: str
    description: str | None = None
    start_ip: str
    end_ip: str
    netmask: str
    gateway: str
    network_cidr: str
    prefix_len: int
    ip_version: int = 4
    ip_range_type: str = "Normal"


class CreateIpRangesMsg(NeedReplyMessage):
    """Store ranges of an L3 in its L2's queue: refused with L3.1001 if any overlaps a
    range of any L3 on the same L2, and with SYS.1007 if its subnet or gateway differs
    from the L3's other ranges. All or nothing."""

    service: ClassVar[str] = IP_RANGE_SERVICE
    route_by: ClassVar[str | None] = "l2_network_uuid"
    l2_network_uuid: str
    l3_network_uuid: str
    ranges: list[NewIpRange]
    auth: AuthContext | None = None


class CreateIpRangesReply(Reply):
    inventories: list[IpRangeInventory] = Field(default_factory=list)


class DeleteIpRangeMsg(NeedReplyMessage):
    """Delete a range in its L3's queue (L3.1002 while its addresses are used, Permissive)."""

    service: ClassVar[str] = IP_RANGE_SERVICE
    route_by: ClassVar[str | None] = "l3_network_uuid"
    l3_network_uuid: str
    uuid: str
    delete_mode: Literal["Permissive", "Enforcing"] = "Permissive"
