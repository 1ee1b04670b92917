"""Messages of the managementNode service."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

from zstackpy.api.messages import APIMessage, APIQueryMessage, APIReply, ApiSpec, Inventory
from zstackpy.core.bus.message import NeedReplyMessage, Reply


class GetManagementNodeInfoMsg(NeedReplyMessage):
    """Describe the node that handles it (this node unless sent to another one)."""

    service: ClassVar[str] = "managementNode"


class GetManagementNodeInfoReply(Reply):
    node_uuid: str
    state: str
    ring: list[str]
    services: list[str]


class WhoOwnsResourceMsg(NeedReplyMessage):
    """Routed by the ring like any message about ``resource_uuid``; the node that receives
    it is the owner. Lets an operator see where a resource's work runs."""

    service: ClassVar[str] = "managementNode"
    route_by: ClassVar[str | None] = "resource_uuid"
    resource_uuid: str


class WhoOwnsResourceReply(Reply):
    node_uuid: str
    resource_uuid: str


_PKG = "org.zstack.header.managementnode"


class ManagementNodeInventory(Inventory):
    uuid: str
    host_name: str
    join_date: datetime
    heart_beat: datetime


class APIQueryManagementNodeMsg(APIQueryMessage):
    query_of: ClassVar[str] = "ManagementNode"
    api: ClassVar[ApiSpec | None] = ApiSpec(
        name="QueryManagementNode",
        java_class=f"{_PKG}.APIQueryManagementNodeMsg",
        method="GET",
        path="/management-nodes",
        is_async=False,
        result_java_class=f"{_PKG}.APIQueryManagementNodeReply",
        summary="Query the live management nodes",
    )


class APIGetVersionMsg(APIMessage):
    api_service: ClassVar[str] = "managementNode"
    api: ClassVar[ApiSpec | None] = ApiSpec(
        name="GetVersion",
        java_class=f"{_PKG}.APIGetVersionMsg",
        method="PUT",
        path="/management-nodes/actions",
        body_key="getVersion",
        is_async=False,
        needs_session=False,
        result_java_class=f"{_PKG}.APIGetVersionReply",
        summary="The management node's version",
    )


class APIGetVersionReply(APIReply):
    version: str


class APIIsReadyToGoMsg(APIMessage):
    """ZStack's readiness probe: answers when the node (this one, or
    ``managementNodeId``) serves; SYS.1010 with the failed checks when it does not."""

    api_service: ClassVar[str] = "managementNode"
    api: ClassVar[ApiSpec | None] = ApiSpec(
        name="IsReadyToGo",
        java_class="org.zstack.header.apimediator.APIIsReadyToGoMsg",
        method="GET",
        path="/management-nodes/ready",
        is_async=False,
        needs_session=False,
        result_java_class="org.zstack.header.apimediator.APIIsReadyToGoReply",
        summary="Whether a management node is ready: database, bus, ring and heartbeat",
    )

    management_node_id: str | None = None


class APIIsReadyToGoReply(APIReply):
    management_node_id: str
    state: str
    checks: dict[str, str]


class APIDrainManagementNodeMsg(APIMessage):
    """Our addition (ZStack has none): drain a management node, as SIGTERM does. It turns
    not ready, refuses new API jobs (SYS.1010), lets its running ones end (up to its
    ``ZSTACK_DRAIN_TIMEOUT``), then stops; the others take its resources over."""

    api_service: ClassVar[str] = "managementNode"
    api: ClassVar[ApiSpec | None] = ApiSpec(
        name="DrainManagementNode",
        java_class=f"{_PKG}.APIDrainManagementNodeMsg",
        method="PUT",
        path="/management-nodes/{uuid}/actions",
        body_key="drainManagementNode",
        admin_only=True,
        result_java_class=f"{_PKG}.APIDrainManagementNodeEvent",
        summary="Drain a management node (no new jobs, running ones end), then stop it",
    )

    uuid: str


class DrainManagementNodeMsg(NeedReplyMessage):
    """Sent to the node to drain; it answers, then drains and stops."""

    service: ClassVar[str] = "managementNode"


class APIDrainManagementNodeEvent(APIReply):
    management_node_id: str
    state: str
