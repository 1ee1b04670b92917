"""Global configs: typed, validated, stored, changed at run time with change events."""

from zstackpy.core.config.definitions import ConfigValue, GlobalConfigDef
from zstackpy.core.config.messages import (
    GetGlobalConfigMsg,
    GetGlobalConfigReply,
    GlobalConfigChangedEvent,
    GlobalConfigInventory,
    ListGlobalConfigsMsg,
    ListGlobalConfigsReply,
    UpdateGlobalConfigMsg,
    UpdateGlobalConfigReply,
)
from zstackpy.core.config.service import GlobalConfigService
from zstackpy.core.config.store import GlobalConfigs

__all__ = [
    "ConfigValue",
    "GetGlobalConfigMsg",
    "GetGlobalConfigReply",
    "GlobalConfigChangedEvent",
    "GlobalConfigDef",
    "GlobalConfigInventory",
    "GlobalConfigService",
    "GlobalConfigs",
    "ListGlobalConfigsMsg",
    "ListGlobalConfigsReply",
    "UpdateGlobalConfigMsg",
    "UpdateGlobalConfigReply",
]
