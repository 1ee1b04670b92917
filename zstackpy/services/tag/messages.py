"""The tag service's contract: tag APIs, the inventory, and ApplyTagsMsg for creates."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

from pydantic import Field

from zstackpy.api.messages import (
    APIMessage,
    APIQueryMessage,
    APIReply,
    ApiSpec,
    AuthContext,
    Inventory,
)
from zstackpy.core.bus.message import NeedReplyMessage

TAG_SERVICE = "tag"
_PKG = "org.zstack.header.tag"


class TagInventory(Inventory):
    uuid: str
    resource_uuid: str
    resource_type: str
    tag: str
    type: str
    create_date: datetime
    last_op_date: datetime


class SystemTagInventory(TagInventory):
    inherent: bool = False


class TagEvent(APIReply):
    inventory: TagInventory | None = None


class _APICreateTag(APIMessage):
    """ZStack's tag creates: ``resourceUuid`` is the resource being tagged."""

    api_service: ClassVar[str] = TAG_SERVICE
    resource_type: str = Field(min_length=1, max_length=64)
    resource_uuid: str
    tag: str = Field(min_length=1, max_length=1024)


class APICreateSystemTagMsg(_APICreateTag):
    api: ClassVar[ApiSpec | None] = ApiSpec(
        name="CreateSystemTag",
        java_class=f"{_PKG}.APICreateSystemTagMsg",
        method="POST",
        path="/system-tags",
        body_key="params",
        result_java_class=f"{_PKG}.APICreateSystemTagEvent",
        summary="Tag a resource with a system tag its type accepts",
    )


class APICreateUserTagMsg(_APICreateTag):
    api: ClassVar[ApiSpec | None] = ApiSpec(
        name="CreateUserTag",
        java_class=f"{_PKG}.APICreateUserTagMsg",
        method="POST",
        path="/user-tags",
        body_key="params",
        result_java_class=f"{_PKG}.APICreateUserTagEvent",
        summary="Tag a resource with free text",
    )


class APIDeleteTagMsg(APIMessage):
    api_service: ClassVar[str] = TAG_SERVICE
    api: ClassVar[ApiSpec | None] = ApiSpec(
        name="DeleteTag",
        java_class=f"{_PKG}.APIDeleteTagMsg",
        method="DELETE",
        path="/tags/{uuid}",
        result_java_class=f"{_PKG}.APIDeleteTagEvent",
        summary="Delete a system or user tag",
    )
    uuid: str


class APIQuerySystemTagMsg(APIQueryMessage):
    query_of: ClassVar[str] = "SystemTag"
    api: ClassVar[ApiSpec | None] = ApiSpec(
        name="QuerySystemTag",
        java_class=f"{_PKG}.APIQuerySystemTagMsg",
        method="GET",
        path="/system-tags",
        is_async=False,
        result_java_class=f"{_PKG}.APIQuerySystemTagReply",
        summary="Query system tags",
    )


class APIQueryUserTagMsg(APIQueryMessage):
    query_of: ClassVar[str] = "UserTag"
    api: ClassVar[ApiSpec | None] = ApiSpec(
        name="QueryUserTag",
        java_class=f"{_PKG}.APIQueryUserTagMsg",
        method="GET",
        path="/user-tags",
        is_async=False,
        result_java_class=f"{_PKG}.APIQueryUserTagReply",
        summary="Query user tags",
    )


class ApplyTagsMsg(NeedReplyMessage):
    """Internal: the portal, after a create succeeded, attaches the request's
    ``systemTags``/``userTags`` (already checked before the create was forwarded)."""

    service: ClassVar[str] = TAG_SERVICE
    resource_uuid: str
    resource_type: str
    system_tags: list[str] = Field(default_factory=list)
    user_tags: list[str] = Field(default_factory=list)
    auth: AuthContext | None = None  # None for sessionless APIs: the tags then have no owner
