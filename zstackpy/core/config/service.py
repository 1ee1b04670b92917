"""GlobalConfigService: read, list and change global configs over the bus.

A change is validated, committed in one short transaction and then published as
GlobalConfigChangedEvent; every node (this one too) applies it from that event, so all
caches follow the same path. Handlers are thin: the rules live in the definitions.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import select

from zstackpy.core.config.definitions import GlobalConfigDef
from zstackpy.core.config.messages import (
    SERVICE,
    GetGlobalConfigMsg,
    GetGlobalConfigReply,
    GlobalConfigChangedEvent,
    GlobalConfigInventory,
    ListGlobalConfigsMsg,
    ListGlobalConfigsReply,
    UpdateGlobalConfigMsg,
    UpdateGlobalConfigReply,
)
from zstackpy.core.db import GlobalConfigVO
from zstackpy.core.errors import ZError
from zstackpy.core.service import Service, handles

log = logging.getLogger(__name__)


class GlobalConfigService(Service):
    name = SERVICE

    async def start(self) -> None:
        # The node loads the configs before any service starts (the heartbeat needs them).
        await self.ctx.bus.subscribe(GlobalConfigChangedEvent, self._on_changed)

    @handles(GetGlobalConfigMsg)
    async def get_config(self, msg: GetGlobalConfigMsg) -> GetGlobalConfigReply:
        defn = self.ctx.configs.definition(msg.category, msg.name)
        return GetGlobalConfigReply(inventory=self._inventory(defn))

    @handles(ListGlobalConfigsMsg)
    async def list_configs(self, msg: ListGlobalConfigsMsg) -> ListGlobalConfigsReply:
        return ListGlobalConfigsReply(
            inventories=[
                self._inventory(d)
                for d in self.ctx.configs.definitions()
                if msg.category is None or d.category == msg.category
            ]
        )

    @handles(UpdateGlobalConfigMsg)
    async def update_config(self, msg: UpdateGlobalConfigMsg) -> UpdateGlobalConfigReply:
        defn = self.ctx.configs.definition(msg.category, msg.name)
        new_text = defn.to_text(defn.parse(msg.value))  # raises before anything is written
        async with self.ctx.db.session() as session, session.begin():
            row = (
                await session.execute(
                    select(GlobalConfigVO)
                    .where(GlobalConfigVO.category == defn.category)
                    .where(GlobalConfigVO.name == defn.name)
                    .with_for_update()
                )
            ).scalar_one_or_none()
            if row is None:
                # Defined after the last load(): the row does not exist yet.
                old_text = defn.default_text()
                session.add(
                    GlobalConfigVO(
                        category=defn.category,
                        name=defn.name,
                        value=new_text,
                        default_value=defn.default_text(),
                        description=defn.description,
                        value_type=defn.type_name,
                    )
                )
            else:
                old_text = row.value
                row.value = new_text
        await self.ctx.bus.publish(
            GlobalConfigChangedEvent(
                category=defn.category, name=defn.name, old_value=old_text, new_value=new_text
            )
        )
        return UpdateGlobalConfigReply(inventory=self._inventory(defn, new_text))

    async def _on_changed(self, event: GlobalConfigChangedEvent) -> None:
        # Apply what the database holds now, not the event's value: events from two nodes
        # changing one config may arrive in either order, but the last one to arrive is
        # read after both commits, so every node ends at the committed value.
        try:
            value = await self._stored_text(event.category, event.name)
        except Exception:
            log.exception(
                "cannot read global config %s.%s; applying the event's value",
                event.category,
                event.name,
            )
            value = event.new_value
        if value is None:
            value = event.new_value
        try:
            await self.ctx.configs.apply_change(event.category, event.name, value)
        except ZError as exc:
            # A node running other code may not know this config or its new constraint.
            log.warning(
                "global config change %s.%s not applied: %s",
                event.category,
                event.name,
                exc.description,
            )

    async def _stored_text(self, category: str, name: str) -> str | None:
        async with self.ctx.db.session() as session:
            result = await session.execute(
                select(GlobalConfigVO.value)
                .where(GlobalConfigVO.category == category)
                .where(GlobalConfigVO.name == name)
            )
            return result.scalar_one_or_none()

    def _inventory(
        self, defn: GlobalConfigDef[Any], value_text: str | None = None
    ) -> GlobalConfigInventory:
        return GlobalConfigInventory(
            category=defn.category,
            name=defn.name,
            value=value_text
            if value_text is not None
            else self.ctx.configs.text(defn.category, defn.name),
            default_value=defn.default_text(),
            description=defn.description,
            value_type=defn.type_name,
        )
