"""What every VM creation of a burst reads alike, read once for all of them that ask at
the same time (core.coalesce: each shares a read that started after it asked)."""

from __future__ import annotations

from sqlalchemy import select

from zstackpy.core.coalesce import CoalescedReads
from zstackpy.core.context import NodeContext
from zstackpy.core.db import ResourceVO
from zstackpy.services.offering.models import InstanceOfferingVO

# uuid -> owning account (None: the admin's), for the uuids that exist
Owners = dict[str, str | None]


class ReferenceReads:
    """One per VM service; rows it answers are shared by their callers: read-only."""

    def __init__(self, ctx: NodeContext) -> None:
        self._ctx = ctx
        self.owners: CoalescedReads[tuple[str, ...], Owners] = CoalescedReads(self._owners)
        self.offerings: CoalescedReads[str, InstanceOfferingVO | None] = CoalescedReads(
            self._offering
        )

    async def _owners(self, uuids: tuple[str, ...]) -> Owners:
        async with self._ctx.db.read_session() as session:
            rows = await session.execute(
                select(ResourceVO.uuid, ResourceVO.account_uuid).where(ResourceVO.uuid.in_(uuids))
            )
            return {uuid: account for uuid, account in rows.all()}

    async def _offering(self, uuid: str) -> InstanceOfferingVO | None:
        async with self._ctx.db.read_session() as session:
            return await session.get(InstanceOfferingVO, uuid)
