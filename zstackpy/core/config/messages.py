"""The global config service's contract: messages, replies, the change event, the inventory.

Values travel as text (their stored form); each node parses them with its definition.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field

from zstackpy.core.bus.message import Event, NeedReplyMessage, Reply

SERVICE = "globalConfig"


class GlobalConfigInventory(BaseModel):
    """ZStack's GlobalConfigInventory: camelCase on the wire, snake_case in Python."""

    model_config = ConfigDict(
        validate_by_name=True, validate_by_alias=True, serialize_by_alias=True
    )

    category: str
    name: str
    value: str
    default_value: str = Field(alias="defaultValue")
    description: str = ""
    value_type: str = Field(default="str", alias="type")


class GetGlobalConfigMsg(NeedReplyMessage):
    service: ClassVar[str] = SERVICE
    category: str
    name: str


class GetGlobalConfigReply(Reply):
    inventory: GlobalConfigInventory


class ListGlobalConfigsMsg(NeedReplyMessage):
    service: ClassVar[str] = SERVICE
    category: str | None = None  # None: every category


class ListGlobalConfigsReply(Reply):
    inventories: list[GlobalConfigInventory] = Field(default_factory=list)


class UpdateGlobalConfigMsg(NeedReplyMessage):
    """Change a config cluster-wide; a value that does not validate changes nothing."""

    service: ClassVar[str] = SERVICE
    category: str
    name: str
    value: str


class UpdateGlobalConfigReply(Reply):
    inventory: GlobalConfigInventory


class GlobalConfigChangedEvent(Event):
    """Published after the new value is committed; every node applies it to its cache."""

    service: ClassVar[str] = SERVICE
    category: str
    name: str
    old_value: str
    new_value: str
