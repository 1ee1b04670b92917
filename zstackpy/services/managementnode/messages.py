"""Messages of the managementNode service."""

from __future__ import annotations

from typing import ClassVar

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
