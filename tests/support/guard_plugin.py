"""A test plugin: a system tag pattern for zones, and a cascade member that refuses to let a
zone go while it carries the user tag ``guarded`` (as a host with VMs would refuse)."""

from __future__ import annotations

from sqlalchemy import select

from zstackpy.core.cascade import CascadeChildren, CascadeParticipant, DeleteMode
from zstackpy.core.context import NodeContext
from zstackpy.core.errors import SysErr, ZError
from zstackpy.core.plugin import PluginRegistry
from zstackpy.core.service import Service
from zstackpy.services.tag.models import UserTagVO
from zstackpy.services.tag.patterns import TagPattern

GUARD_TYPE = "GuardVO"


class GuardService(Service):
    name = "guard"

    def __init__(self, ctx: NodeContext) -> None:
        super().__init__(ctx)
        self.deleted: list[str] = []

    async def cascade_children(
        self, parent_type: str, parent_uuids: tuple[str, ...]
    ) -> CascadeChildren | None:
        if parent_type != "ZoneVO":
            return None
        async with self.ctx.db.session() as session:
            rows = await session.execute(
                select(UserTagVO.resource_uuid).where(
                    UserTagVO.resource_uuid.in_(parent_uuids), UserTagVO.tag == "guarded"
                )
            )
            return CascadeChildren(GUARD_TYPE, tuple(rows.scalars()))

    async def cascade_check(self, children: CascadeChildren) -> None:
        raise ZError(SysErr.OPERATION, "the guard is still on duty", guarded=list(children.uuids))

    async def cascade_delete(self, children: CascadeChildren, mode: DeleteMode) -> None:
        self.deleted.extend(children.uuids)


class GuardPlugin:
    name = "guard"

    def setup(self, registry: PluginRegistry) -> None:
        registry.add_service(GuardService)
        registry.add_extension(CascadeParticipant, GuardService)
        registry.add_system_tag_pattern(
            TagPattern("ZoneVO", "zoneKey::{key}", checks={"key": str.isalnum})
        )


plugin = GuardPlugin()
