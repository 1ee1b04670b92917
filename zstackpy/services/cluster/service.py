"""Cluster handlers: every change of a cluster runs in that cluster's work queue. Clusters
belong to zones, so this service also takes part in a zone's cascade delete."""

from __future__ import annotations

from sqlalchemy import select

from zstackpy.api.ownership import add_resource, may_use
from zstackpy.core.bus.message import Reply
from zstackpy.core.cascade import CascadeChildren, DeleteMode
from zstackpy.core.errors import SysErr, ZError
from zstackpy.core.service import handles
from zstackpy.core.workqueue import QueueKey
from zstackpy.services.cluster.messages import (
    CLUSTER_SERVICE,
    APIChangeClusterStateMsg,
    APICreateClusterMsg,
    APIDeleteClusterMsg,
    APIUpdateClusterMsg,
    ClusterEvent,
    ClusterInventory,
    DeleteClusterMsg,
)
from zstackpy.services.cluster.models import ClusterVO
from zstackpy.services.resource_service import ResourceService
from zstackpy.services.zone.models import ZoneVO

CLUSTER_TYPE = "ClusterVO"
_ZONE_TYPE = "ZoneVO"


class ClusterService(ResourceService):
    name = CLUSTER_SERVICE
    model = ClusterVO
    inventory = ClusterInventory
    resource_type = CLUSTER_TYPE
    noun = "cluster"

    @handles(APICreateClusterMsg)
    async def create(self, msg: APICreateClusterMsg) -> ClusterEvent:
        assert msg.resource_uuid is not None  # the portal gives every create its UUID
        key = QueueKey("cluster", msg.resource_uuid)
        return await self.ctx.queues.run(key, self._create, msg)

    async def _create(self, msg: APICreateClusterMsg) -> ClusterEvent:
        uuid, auth = msg.resource_uuid, msg.require_auth()
        assert uuid is not None
        async with self.ctx.db.session() as session, session.begin():
            await self.refuse_duplicate(session, uuid)
            # A zone row without its ResourceVO cannot exist, so may_use covers both checks.
            if await session.get(ZoneVO, msg.zone_uuid) is None or not await may_use(
                session, msg.zone_uuid, auth
            ):
                raise ZError(
                    SysErr.RESOURCE_NOT_FOUND,
                    f"no zone with uuid {msg.zone_uuid}",
                    uuid=msg.zone_uuid,
                )
            session.add(
                ClusterVO(
                    uuid=uuid,
                    zone_uuid=msg.zone_uuid,
                    name=msg.name,
                    description=msg.description,
                    state="Enabled",
                    hypervisor_type=msg.hypervisor_type,
                    type=msg.type,
                    architecture=msg.architecture,
                )
            )
            add_resource(session, uuid=uuid, resource_type=CLUSTER_TYPE, name=msg.name, auth=auth)
        return ClusterEvent(inventory=await self.answer(uuid, "created", auth))

    @handles(APIUpdateClusterMsg)
    async def update(self, msg: APIUpdateClusterMsg) -> ClusterEvent:
        return await self.ctx.queues.run(QueueKey("cluster", msg.uuid), self._update, msg)

    async def _update(self, msg: APIUpdateClusterMsg) -> ClusterEvent:
        # Column names, not wire names: messages serialize by alias by default.
        changes = msg.model_dump(include={"name", "description"}, exclude_none=True, by_alias=False)
        await self.update_fields(msg.uuid, changes)
        return ClusterEvent(inventory=await self.answer(msg.uuid, "updated", msg.require_auth()))

    @handles(APIChangeClusterStateMsg)
    async def change_cluster_state(self, msg: APIChangeClusterStateMsg) -> ClusterEvent:
        return await self.ctx.queues.run(QueueKey("cluster", msg.uuid), self._change_state, msg)

    async def _change_state(self, msg: APIChangeClusterStateMsg) -> ClusterEvent:
        auth = msg.require_auth()
        return ClusterEvent(inventory=await self.change_state(msg.uuid, msg.state_event, auth))

    @handles(APIDeleteClusterMsg)
    async def delete_api(self, msg: APIDeleteClusterMsg) -> ClusterEvent:
        await self.ctx.queues.run(
            QueueKey("cluster", msg.uuid), self._delete, msg.uuid, msg.delete_mode
        )
        return ClusterEvent()

    @handles(DeleteClusterMsg)
    async def delete_internal(self, msg: DeleteClusterMsg) -> Reply:
        await self.ctx.queues.run(
            QueueKey("cluster", msg.uuid), self._delete, msg.uuid, msg.delete_mode
        )
        return Reply()

    async def _delete(self, uuid: str, mode: str) -> None:
        # Cascade-driven and API deletes alike announce no account: only the admin sees it.
        await self.delete_with_children(uuid, mode, None)

    # ----- CascadeParticipant: clusters belong to zones ---------------------------------

    async def cascade_children(
        self, parent_type: str, parent_uuids: tuple[str, ...]
    ) -> CascadeChildren | None:
        if parent_type != _ZONE_TYPE:
            return None
        async with self.ctx.db.session() as session:
            rows = await session.execute(
                select(ClusterVO.uuid).where(ClusterVO.zone_uuid.in_(parent_uuids))
            )
            uuids = tuple(rows.scalars())
        return CascadeChildren(CLUSTER_TYPE, uuids)

    async def cascade_check(self, children: CascadeChildren) -> None:
        """Clusters hold nothing that could refuse yet (hosts will)."""

    async def cascade_delete(self, children: CascadeChildren, mode: DeleteMode) -> None:
        replies = await self.ctx.bus.call_many(
            [DeleteClusterMsg(uuid=u, delete_mode=mode.value) for u in children.uuids],
            parallelism=8,
        )
        for reply in replies:
            reply.raise_if_error()
