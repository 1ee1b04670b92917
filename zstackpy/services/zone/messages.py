"""The zone service's contract: API messages, inventory, internal messages."""

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

ZONE_SERVICE = "zone"
_PKG = "org.zstack.header.zone"


class ZoneInventory(Inventory):
    uuid: str
    name: str
    description: str | None = None
    state: str
    type: str
    is_default: bool
    create_date: datetime
    last_op_date: datetime


class ZoneEvent(APIReply):
    inventory: ZoneInventory | None = None


class APICreateZoneMsg(APICreateMessage):
    api_service: ClassVar[str] = ZONE_SERVICE
    api: ClassVar[ApiSpec | None] = ApiSpec(
        name="CreateZone",
        java_class=f"{_PKG}.APICreateZoneMsg",
        method="POST",
        path="/zones",
        body_key="params",
        result_java_class=f"{_PKG}.APICreateZoneEvent",
        creates="ZoneVO",
        summary="Create a zone",
    )
    route_by: ClassVar[str | None] = "resource_uuid"
    name: str = Field(min_length=1, max_length=255)
    description: str | None = Field(None, max_length=2048)
    is_default: bool = False


class APIUpdateZoneMsg(APIMessage):
    api_service: ClassVar[str] = ZONE_SERVICE
    api: ClassVar[ApiSpec | None] = ApiSpec(
        name="UpdateZone",
        java_class=f"{_PKG}.APIUpdateZoneMsg",
        method="PUT",
        path="/zones/{uuid}/actions",
        body_key="updateZone",
        result_java_class=f"{_PKG}.APIUpdateZoneEvent",
        summary="Change a zone's name, description or default flag",
    )
    route_by: ClassVar[str | None] = "uuid"
    uuid: str
    name: str | None = Field(None, min_length=1, max_length=255)
    description: str | None = Field(None, max_length=2048)
    is_default: bool | None = None


class APIChangeZoneStateMsg(APIMessage):
    api_service: ClassVar[str] = ZONE_SERVICE
    api: ClassVar[ApiSpec | None] = ApiSpec(
        name="ChangeZoneState",
        java_class=f"{_PKG}.APIChangeZoneStateMsg",
        method="PUT",
        path="/zones/{uuid}/actions",
        body_key="changeZoneState",
        result_java_class=f"{_PKG}.APIChangeZoneStateEvent",
        summary="Enable or disable a zone",
    )
    route_by: ClassVar[str | None] = "uuid"
    uuid: str
    state_event: Literal["enable", "disable"]


class APIDeleteZoneMsg(APIMessage):
    api_service: ClassVar[str] = ZONE_SERVICE
    api: ClassVar[ApiSpec | None] = ApiSpec(
        name="DeleteZone",
        java_class=f"{_PKG}.APIDeleteZoneMsg",
        method="DELETE",
        path="/zones/{uuid}",
        result_java_class=f"{_PKG}.APIDeleteZoneEvent",
        summary="Delete a zone and, by cascade, everything in it",
    )
    route_by: ClassVar[str | None] = "uuid"
    uuid: str
    delete_mode: Literal["Permissive", "Enforcing"] = "Permissive"


class APIQueryZoneMsg(APIQueryMessage):
    query_of: ClassVar[str] = "Zone"
    api: ClassVar[ApiSpec | None] = ApiSpec(
        name="QueryZone",
        java_class=f"{_PKG}.APIQueryZoneMsg",
        method="GET",
        path="/zones",
        is_async=False,
        result_java_class=f"{_PKG}.APIQueryZoneReply",
        summary="Query zones",
    )
