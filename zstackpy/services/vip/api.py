"""VIP API messages (ZStack's names, paths and fields)."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from zstackpy.api.messages import APICreateMessage, APIMessage, APIQueryMessage, APIReply, ApiSpec
from zstackpy.services.vip.messages import VIP_SERVICE, VipInventory

_PKG = "org.zstack.network.service.vip"


class VipEvent(APIReply):
    inventory: VipInventory | None = None


class APICreateVipMsg(APICreateMessage):
    api_service: ClassVar[str] = VIP_SERVICE
    api: ClassVar[ApiSpec | None] = ApiSpec(
        name="CreateVip",
        java_class=f"{_PKG}.APICreateVipMsg",
        method="POST",
        path="/vips",
        body_key="params",
        result_java_class=f"{_PKG}.APICreateVipEvent",
        creates="VipVO",
        summary="Take an address of an L3 network (a given one, or any free one) as a VIP",
    )
    route_by: ClassVar[str | None] = "resource_uuid"
    name: str = Field(min_length=1, max_length=255)
    description: str | None = Field(None, max_length=2048)
    l3_network_uuid: str
    required_ip: str | None = None
    ip_range_uuid: str | None = None
    allocator_strategy: str | None = None
    ip_version: Literal[4] = 4


class APIDeleteVipMsg(APIMessage):
    api_service: ClassVar[str] = VIP_SERVICE
    api: ClassVar[ApiSpec | None] = ApiSpec(
        name="DeleteVip",
        java_class=f"{_PKG}.APIDeleteVipMsg",
        method="DELETE",
        path="/vips/{uuid}",
        result_java_class=f"{_PKG}.APIDeleteVipEvent",
        summary="Delete a VIP, the services using it first (its EIP), and free its address",
    )
    route_by: ClassVar[str | None] = "uuid"
    uuid: str
    delete_mode: Literal["Permissive", "Enforcing"] = "Permissive"


class APIUpdateVipMsg(APIMessage):
    api_service: ClassVar[str] = VIP_SERVICE
    api: ClassVar[ApiSpec | None] = ApiSpec(
        name="UpdateVip",
        java_class=f"{_PKG}.APIUpdateVipMsg",
        method="PUT",
        path="/vips/{uuid}/actions",
        body_key="updateVip",
        result_java_class=f"{_PKG}.APIUpdateVipEvent",
        summary="Change a VIP's name or description",
    )
    route_by: ClassVar[str | None] = "uuid"
    uuid: str
    name: str | None = Field(None, min_length=1, max_length=255)
    description: str | None = Field(None, max_length=2048)


class APIChangeVipStateMsg(APIMessage):
    api_service: ClassVar[str] = VIP_SERVICE
    api: ClassVar[ApiSpec | None] = ApiSpec(
        name="ChangeVipState",
        java_class=f"{_PKG}.APIChangeVipStateMsg",
        method="PUT",
        path="/vips/{uuid}/actions",
        body_key="changeVipState",
        result_java_class=f"{_PKG}.APIChangeVipStateEvent",
        summary="Enable or disable a VIP (the services on a disabled one stay, off hosts "
        "and routers)",
    )
    route_by: ClassVar[str | None] = "uuid"
    uuid: str
    state_event: Literal["enable", "disable"]


class APIQueryVipMsg(APIQueryMessage):
    query_of: ClassVar[str] = "Vip"
    api: ClassVar[ApiSpec | None] = ApiSpec(
        name="QueryVip",
        java_class=f"{_PKG}.APIQueryVipMsg",
        method="GET",
        path="/vips",
        is_async=False,
        result_java_class=f"{_PKG}.APIQueryVipReply",
        summary="Query VIPs",
    )
