"""Read-only IP address APIs: free addresses, one address's availability, capacity."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from zstackpy.api.messages import APIMessage, APIReply, ApiSpec, WireModel
from zstackpy.services.network.inventories import FreeIpInventory
from zstackpy.services.network.messages import IPAM_SERVICE

_PKG = "org.zstack.header.network.l3"


class APIGetFreeIpMsg(APIMessage):
    """Free addresses of an L3 network or of one range, in address order from ``start``."""

    api_service: ClassVar[str] = IPAM_SERVICE
    api: ClassVar[ApiSpec | None] = ApiSpec(
        name="GetFreeIp",
        java_class=f"{_PKG}.APIGetFreeIpMsg",
        method="GET",
        path="/l3-networks/ip/free",
        is_async=False,
        result_java_class=f"{_PKG}.APIGetFreeIpReply",
        summary="List free IP addresses of an L3 network or an IP range",
    )
    route_by: ClassVar[str | None] = "l3_network_uuid"
    l3_network_uuid: str | None = None
    ip_range_uuid: str | None = None
    start: str | None = None  # the first address to consider
    ip_range_type: Literal["Normal", "AddressPool"] | None = None
    ip_version: Literal[4, 6] | None = None
    limit: int = Field(100, ge=1, le=10000)


class GetFreeIpReply(APIReply):
    inventories: list[FreeIpInventory] = Field(default_factory=list)


class APICheckIpAvailabilityMsg(APIMessage):
    api_service: ClassVar[str] = IPAM_SERVICE
    api: ClassVar[ApiSpec | None] = ApiSpec(
        name="CheckIpAvailability",
        java_class=f"{_PKG}.APICheckIpAvailabilityMsg",
        method="GET",
        path="/l3-networks/{l3NetworkUuid}/ip/{ip}/availability",
        is_async=False,
        result_java_class=f"{_PKG}.APICheckIpAvailabilityReply",
        summary="Whether an address of an L3 network can be allocated",
    )
    route_by: ClassVar[str | None] = "l3_network_uuid"
    l3_network_uuid: str
    ip: str
    arp_check: bool = False  # accepted for ZStack's clients; nothing is probed
    ip_range_check: bool = True


class CheckIpAvailabilityReply(APIReply):
    available: bool = False
    reason: str | None = None


class IpCapacityData(WireModel):
    """One resource's part of a capacity answer (ZStack's IpCapacityData)."""

    resource_uuid: str
    total_capacity: int = 0
    available_capacity: int = 0
    used_ip_address_number: int = 0
    ipv4_total_capacity: int = 0
    ipv4_available_capacity: int = 0
    ipv4_used_ip_address_number: int = 0
    ipv6_total_capacity: int = 0
    ipv6_available_capacity: int = 0
    ipv6_used_ip_address_number: int = 0


class APIGetIpAddressCapacityMsg(APIMessage):
    """Capacity of zones, L3 networks or ranges (``all``: every range). The totals add up
    the ranges named, each counted once; ``capacityData`` has one entry per resource."""

    api_service: ClassVar[str] = IPAM_SERVICE
    api: ClassVar[ApiSpec | None] = ApiSpec(
        name="GetIpAddressCapacity",
        java_class=f"{_PKG}.APIGetIpAddressCapacityMsg",
        method="GET",
        path="/ip-capacity",
        is_async=False,
        result_java_class=f"{_PKG}.APIGetIpAddressCapacityReply",
        summary="Total, available and used IP addresses of zones, L3 networks or ranges",
    )
    zone_uuids: list[str] = Field(default_factory=list)
    l3_network_uuids: list[str] = Field(default_factory=list)
    ip_range_uuids: list[str] = Field(default_factory=list)
    all: bool = False


class GetIpAddressCapacityReply(APIReply):
    total_capacity: int = 0
    available_capacity: int = 0
    used_ip_address_number: int = 0
    ipv4_total_capacity: int = 0
    ipv4_available_capacity: int = 0
    ipv4_used_ip_address_number: int = 0
    ipv6_total_capacity: int = 0
    ipv6_available_capacity: int = 0
    ipv6_used_ip_address_number: int = 0
    resource_type: str | None = None
    capacity_data: list[IpCapacityData] = Field(default_factory=list)
