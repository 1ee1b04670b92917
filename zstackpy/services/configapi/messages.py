"""API messages for global configs (ZStack's names and paths)."""

from __future__ import annotations

from typing import ClassVar

from zstackpy.api.messages import APIMessage, APIQueryMessage, APIReply, ApiSpec, Inventory

CONFIG_API_SERVICE = "globalConfigApi"
_PKG = "org.zstack.core.config"


class GlobalConfigApiInventory(Inventory):
    """ZStack's GlobalConfigInventory as the API shows it."""

    category: str
    name: str
    value: str
    default_value: str
    description: str = ""


class GlobalConfigEvent(APIReply):
    inventory: GlobalConfigApiInventory | None = None


class APIQueryGlobalConfigMsg(APIQueryMessage):
    query_of: ClassVar[str] = "GlobalConfig"
    api: ClassVar[ApiSpec | None] = ApiSpec(
        name="QueryGlobalConfig",
        java_class=f"{_PKG}.APIQueryGlobalConfigMsg",
        method="GET",
        path="/global-configurations",
        is_async=False,
        result_java_class=f"{_PKG}.APIQueryGlobalConfigReply",
        summary="Query global configs",
    )


class APIUpdateGlobalConfigMsg(APIMessage):
    api_service: ClassVar[str] = CONFIG_API_SERVICE
    api: ClassVar[ApiSpec | None] = ApiSpec(
        name="UpdateGlobalConfig",
        java_class=f"{_PKG}.APIUpdateGlobalConfigMsg",
        method="PUT",
        path="/global-configurations/{category}/{name}/actions",
        body_key="updateGlobalConfig",
        result_java_class=f"{_PKG}.APIUpdateGlobalConfigEvent",
        admin_only=True,
        summary="Change a global config; every node applies it at once",
    )
    category: str
    name: str
    value: str


class APIResetGlobalConfigMsg(APIMessage):
    api_service: ClassVar[str] = CONFIG_API_SERVICE
    api: ClassVar[ApiSpec | None] = ApiSpec(
        name="ResetGlobalConfig",
        java_class=f"{_PKG}.APIResetGlobalConfigMsg",
        method="PUT",
        path="/global-configurations/{category}/{name}/actions",
        body_key="resetGlobalConfig",
        result_java_class=f"{_PKG}.APIResetGlobalConfigEvent",
        admin_only=True,
        summary="Set a global config back to its default",
    )
    category: str
    name: str
