"""What services of simple resources (zones, clusters, ...) share: the row lookup that
answers "not found", the inventory answer with its change event, updates and removal."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from zstackpy.api.events import ResourceChangedEvent
from zstackpy.api.messages import AuthContext, Inventory
from zstackpy.api.ownership import remove_resources, rename_resource
from zstackpy.core.cascade import CascadeParticipant, DeleteMode, cascade_delete
from zstackpy.core.db.models import Base
from zstackpy.core.errors import SysErr, ZError
from zstackpy.core.service import Service

Change = Literal["created", "updated", "deleted"]


class ResourceService(Service):
    """Base of a service owning one table. Subclasses set the ClassVars."""

    model: ClassVar[type[Base]]
    inventory: ClassVar[type[Inventory]]
    resource_type: ClassVar[str]  # the VO name, e.g. "ZoneVO"
    noun: ClassVar[str]  # for messages: "zone"

    async def require(self, session: AsyncSession, uuid: str) -> Any:
        row = await session.get(self.model, uuid)
        if row is None:
            raise ZError(SysErr.RESOURCE_NOT_FOUND, f"no {self.noun} with uuid {uuid}", uuid=uuid)
        return row

    async def refuse_duplicate(self, session: AsyncSession, uuid: str) -> None:
        table: Any = self.model
        if await session.scalar(select(table.uuid).where(table.uuid == uuid)) is not None:
            raise ZError(
                SysErr.CREATE_RESOURCE, f"a {self.noun} with uuid {uuid} exists", uuid=uuid
            )

    async def update_fields(self, uuid: str, changes: dict[str, Any]) -> None:
        """Change columns of an existing row (and its ResourceVO name when renamed)."""
        table: Any = self.model
        async with self.ctx.db.session() as session, session.begin():
            await self.require(session, uuid)
            if changes:
                await session.execute(update(table).where(table.uuid == uuid).values(**changes))
            if "name" in changes:
                await rename_resource(session, uuid, changes["name"])

    async def answer(self, uuid: str, change: Change, auth: AuthContext) -> Inventory:
        """The row's inventory, after telling every subscriber what changed."""
        async with self.ctx.db.session() as session:
            row = await self.require(session, uuid)
        inventory = self.inventory.model_validate(row, from_attributes=True)
        await self._publish(uuid, change, auth, inventory.model_dump(mode="json", by_alias=True))
        return inventory

    async def change_state(self, uuid: str, state_event: str, auth: AuthContext) -> Inventory:
        """ZStack's ``stateEvent`` verbs: ``enable`` -> Enabled, ``disable`` -> Disabled."""
        state = "Enabled" if state_event == "enable" else "Disabled"
        await self.update_fields(uuid, {"state": state})
        return await self.answer(uuid, "updated", auth)

    async def delete_with_children(self, uuid: str, mode: str, auth: AuthContext | None) -> None:
        """Delete the row after its children: each child goes in its own queue, and a child
        that refuses (Permissive mode) stops the delete before anything is gone."""
        async with self.ctx.db.session() as session:
            await self.require(session, uuid)
        await cascade_delete(
            self.ctx.plugins.extensions(CascadeParticipant),
            self.resource_type,
            [uuid],
            DeleteMode(mode),
        )
        await self.remove([uuid], auth)

    async def remove(self, uuids: list[str], auth: AuthContext | None) -> None:
        table: Any = self.model
        async with self.ctx.db.session() as session, session.begin():
            await session.execute(delete(table).where(table.uuid.in_(uuids)))
            await remove_resources(session, uuids)
        for uuid in uuids:
            await self._publish(uuid, "deleted", auth, None)

    async def _publish(
        self, uuid: str, change: Change, auth: AuthContext | None, inventory: dict[str, Any] | None
    ) -> None:
        await self.ctx.bus.publish(
            ResourceChangedEvent(
                resource_type=self.resource_type,
                resource_uuid=uuid,
                change=change,
                account_uuid=auth.account_uuid if auth else None,
                inventory=inventory,
            )
        )
