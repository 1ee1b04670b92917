"""Turns the global-config APIs into the kernel's own global-config messages."""

from __future__ import annotations

from zstackpy.core.config.messages import (
    GetGlobalConfigMsg,
    GetGlobalConfigReply,
    GlobalConfigInventory,
    UpdateGlobalConfigMsg,
    UpdateGlobalConfigReply,
)
from zstackpy.core.service import Service, handles
from zstackpy.services.configapi.messages import (
    CONFIG_API_SERVICE,
    APIResetGlobalConfigMsg,
    APIUpdateGlobalConfigMsg,
    GlobalConfigApiInventory,
    GlobalConfigEvent,
)


class GlobalConfigApiService(Service):
    name = CONFIG_API_SERVICE

    @handles(APIUpdateGlobalConfigMsg)
    async def update(self, msg: APIUpdateGlobalConfigMsg) -> GlobalConfigEvent:
        return await self._set(msg.category, msg.name, msg.value)

    @handles(APIResetGlobalConfigMsg)
    async def reset(self, msg: APIResetGlobalConfigMsg) -> GlobalConfigEvent:
        current = await self.ctx.bus.request(
            GetGlobalConfigMsg(category=msg.category, name=msg.name), GetGlobalConfigReply
        )
        return await self._set(msg.category, msg.name, current.inventory.default_value)

    async def _set(self, category: str, name: str, value: str) -> GlobalConfigEvent:
        reply = await self.ctx.bus.request(
            UpdateGlobalConfigMsg(category=category, name=name, value=value),
            UpdateGlobalConfigReply,
        )
        return GlobalConfigEvent(inventory=_api_view(reply.inventory))


def _api_view(inventory: GlobalConfigInventory) -> GlobalConfigApiInventory:
    return GlobalConfigApiInventory(
        category=inventory.category,
        name=inventory.name,
        value=inventory.value,
        default_value=inventory.default_value,
        description=inventory.description,
    )
