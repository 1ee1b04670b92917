"""Zone handlers: every change of a zone runs in that zone's work queue."""

from __future__ import annotations

from zstackpy.api.ownership import add_resource
from zstackpy.core.service import handles
from zstackpy.core.workqueue import QueueKey
from zstackpy.services.resource_service import ResourceService
from zstackpy.services.zone.messages import (
    ZONE_SERVICE,
    APIChangeZoneStateMsg,
    APICreateZoneMsg,
    APIDeleteZoneMsg,
    APIUpdateZoneMsg,
    ZoneEvent,
    ZoneInventory,
)
from zstackpy.services.zone.models import ZoneVO

ZONE_TYPE = "ZoneVO"


class ZoneService(ResourceService):
    name = ZONE_SERVICE
    model = ZoneVO
    inventory = ZoneInventory
    resource_type = ZONE_TYPE
    noun = "zone"

    @handles(APICreateZoneMsg)
    async def create(self, msg: APICreateZoneMsg) -> ZoneEvent:
        assert msg.resource_uuid is not None  # the portal gives every create its UUID
        return await self.ctx.queues.run(QueueKey("zone", msg.resource_uuid), self._create, msg)

    async def _create(self, msg: APICreateZoneMsg) -> ZoneEvent:
        uuid, auth = msg.resource_uuid, msg.require_auth()
        assert uuid is not None
        async with self.ctx.db.session() as session, session.begin():
            await self.refuse_duplicate(session, uuid)
            session.add(
                ZoneVO(
                    uuid=uuid,
                    name=msg.name,
                    description=msg.description,
                    state="Enabled",
                    type="zstack",
                    is_default=msg.is_default,
                )
            )
            add_resource(session, uuid=uuid, resource_type=ZONE_TYPE, name=msg.name, auth=auth)
        return ZoneEvent(inventory=await self.answer(uuid, "created", auth))

    @handles(APIUpdateZoneMsg)
    async def update(self, msg: APIUpdateZoneMsg) -> ZoneEvent:
        return await self.ctx.queues.run(QueueKey("zone", msg.uuid), self._update, msg)

    async def _update(self, msg: APIUpdateZoneMsg) -> ZoneEvent:
        # Column names, not wire names: messages serialize by alias by default.
        changes = msg.model_dump(
            include={"name", "description", "is_default"}, exclude_none=True, by_alias=False
        )
        await self.update_fields(msg.uuid, changes)
        return ZoneEvent(inventory=await self.answer(msg.uuid, "updated", msg.require_auth()))

    @handles(APIChangeZoneStateMsg)
    async def change_zone_state(self, msg: APIChangeZoneStateMsg) -> ZoneEvent:
        return await self.ctx.queues.run(QueueKey("zone", msg.uuid), self._change_state, msg)

    async def _change_state(self, msg: APIChangeZoneStateMsg) -> ZoneEvent:
        auth = msg.require_auth()
        return ZoneEvent(inventory=await self.change_state(msg.uuid, msg.state_event, auth))

    @handles(APIDeleteZoneMsg)
    async def delete(self, msg: APIDeleteZoneMsg) -> ZoneEvent:
        return await self.ctx.queues.run(QueueKey("zone", msg.uuid), self._delete, msg)

    async def _delete(self, msg: APIDeleteZoneMsg) -> ZoneEvent:
        # Children first: clusters, and what they hold.
        await self.delete_with_children(msg.uuid, msg.delete_mode, msg.require_auth())
        return ZoneEvent()
