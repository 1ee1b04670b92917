"""Offering handlers: every change of an offering runs in that offering's work queue.

Offerings are templates: nothing belongs to them, and deleting one never touches the VMs
or volumes made from it (they copied its sizes). The cascade still runs, so a future
participant (a VM service keeping ``instanceOfferingUuid``) can take part.
"""

from __future__ import annotations

from zstackpy.api.ownership import add_resource
from zstackpy.core.errors import SysErr, ZError
from zstackpy.core.service import handles
from zstackpy.core.workqueue import QueueKey
from zstackpy.services.host.extensions import HostAllocatorStrategy
from zstackpy.services.offering.messages import (
    DEFAULT_HOST_ALLOCATOR_STRATEGY,
    DEFAULT_PRIMARY_STORAGE_ALLOCATOR_STRATEGY,
    DISK_OFFERING_SERVICE,
    INSTANCE_OFFERING_SERVICE,
    APIChangeDiskOfferingStateMsg,
    APIChangeInstanceOfferingStateMsg,
    APICreateDiskOfferingMsg,
    APICreateInstanceOfferingMsg,
    APIDeleteDiskOfferingMsg,
    APIDeleteInstanceOfferingMsg,
    APIUpdateDiskOfferingMsg,
    APIUpdateInstanceOfferingMsg,
    DiskOfferingEvent,
    DiskOfferingInventory,
    InstanceOfferingEvent,
    InstanceOfferingInventory,
)
from zstackpy.services.offering.models import DiskOfferingVO, InstanceOfferingVO
from zstackpy.services.resource_service import ResourceService

INSTANCE_OFFERING_TYPE = "InstanceOfferingVO"
DISK_OFFERING_TYPE = "DiskOfferingVO"


class InstanceOfferingService(ResourceService):
    name = INSTANCE_OFFERING_SERVICE
    model = InstanceOfferingVO
    inventory = InstanceOfferingInventory
    resource_type = INSTANCE_OFFERING_TYPE
    noun = "instance offering"

    @handles(APICreateInstanceOfferingMsg)
    async def create(self, msg: APICreateInstanceOfferingMsg) -> InstanceOfferingEvent:
        assert msg.resource_uuid is not None  # the portal gives every create its UUID
        key = QueueKey("instance-offering", msg.resource_uuid)
        return await self.ctx.queues.run(key, self._create, msg)

    async def _create(self, msg: APICreateInstanceOfferingMsg) -> InstanceOfferingEvent:
        uuid, auth = msg.resource_uuid, msg.require_auth()
        assert uuid is not None
        self._check_strategy(msg.allocator_strategy)
        async with self.ctx.db.session() as session, session.begin():
            await self.refuse_duplicate(session, uuid)
            session.add(
                InstanceOfferingVO(
                    uuid=uuid,
                    name=msg.name,
                    description=msg.description,
                    cpu_num=msg.cpu_num,
                    cpu_speed=msg.cpu_speed,
                    memory_size=msg.memory_size,
                    reserved_memory_size=msg.reserved_memory_size,
                    allocator_strategy=msg.allocator_strategy or DEFAULT_HOST_ALLOCATOR_STRATEGY,
                    sort_key=msg.sort_key,
                    state="Enabled",
                    type=msg.type,
                )
            )
            add_resource(
                session, uuid=uuid, resource_type=self.resource_type, name=msg.name, auth=auth
            )
        return InstanceOfferingEvent(inventory=await self.answer(uuid, "created", auth))

    @handles(APIUpdateInstanceOfferingMsg)
    async def update(self, msg: APIUpdateInstanceOfferingMsg) -> InstanceOfferingEvent:
        key = QueueKey("instance-offering", msg.uuid)
        return await self.ctx.queues.run(key, self._update, msg)

    async def _update(self, msg: APIUpdateInstanceOfferingMsg) -> InstanceOfferingEvent:
        self._check_strategy(msg.allocator_strategy)
        # Column names, not wire names: messages serialize by alias by default.
        changes = msg.model_dump(
            include={"name", "description", "allocator_strategy"},
            exclude_none=True,
            by_alias=False,
        )
        await self.update_fields(msg.uuid, changes)
        auth = msg.require_auth()
        return InstanceOfferingEvent(inventory=await self.answer(msg.uuid, "updated", auth))

    def _check_strategy(self, name: str | None) -> None:
        """SYS.1007 unless ``name`` (when given) is a registered host allocator strategy:
        a VM made from the offering would otherwise fail at allocation."""
        if name is None:
            return
        known = sorted(s.name for s in self.ctx.plugins.extensions(HostAllocatorStrategy))
        if name not in known:
            raise ZError(
                SysErr.INVALID_ARGUMENT,
                f"allocatorStrategy {name!r} is not a host allocator strategy; use one of "
                f"{', '.join(known)}",
                field="allocatorStrategy",
                value=name,
                validValues=known,
            )

    @handles(APIChangeInstanceOfferingStateMsg)
    async def change_offering_state(
        self, msg: APIChangeInstanceOfferingStateMsg
    ) -> InstanceOfferingEvent:
        key = QueueKey("instance-offering", msg.uuid)
        inventory = await self.ctx.queues.run(
            key, self.change_state, msg.uuid, msg.state_event, msg.require_auth()
        )
        return InstanceOfferingEvent(inventory=inventory)

    @handles(APIDeleteInstanceOfferingMsg)
    async def delete(self, msg: APIDeleteInstanceOfferingMsg) -> InstanceOfferingEvent:
        key = QueueKey("instance-offering", msg.uuid)
        await self.ctx.queues.run(
            key, self.delete_with_children, msg.uuid, msg.delete_mode, msg.require_auth()
        )
        return InstanceOfferingEvent()


class DiskOfferingService(ResourceService):
    name = DISK_OFFERING_SERVICE
    model = DiskOfferingVO
    inventory = DiskOfferingInventory
    resource_type = DISK_OFFERING_TYPE
    noun = "disk offering"

    @handles(APICreateDiskOfferingMsg)
    async def create(self, msg: APICreateDiskOfferingMsg) -> DiskOfferingEvent:
        assert msg.resource_uuid is not None  # the portal gives every create its UUID
        key = QueueKey("disk-offering", msg.resource_uuid)
        return await self.ctx.queues.run(key, self._create, msg)

    async def _create(self, msg: APICreateDiskOfferingMsg) -> DiskOfferingEvent:
        uuid, auth = msg.resource_uuid, msg.require_auth()
        assert uuid is not None
        strategy = msg.allocation_strategy or DEFAULT_PRIMARY_STORAGE_ALLOCATOR_STRATEGY
        async with self.ctx.db.session() as session, session.begin():
            await self.refuse_duplicate(session, uuid)
            session.add(
                DiskOfferingVO(
                    uuid=uuid,
                    name=msg.name,
                    description=msg.description,
                    disk_size=msg.disk_size,
                    allocator_strategy=strategy,
                    sort_key=msg.sort_key,
                    state="Enabled",
                    type=msg.type,
                )
            )
            add_resource(
                session, uuid=uuid, resource_type=self.resource_type, name=msg.name, auth=auth
            )
        return DiskOfferingEvent(inventory=await self.answer(uuid, "created", auth))

    @handles(APIUpdateDiskOfferingMsg)
    async def update(self, msg: APIUpdateDiskOfferingMsg) -> DiskOfferingEvent:
        return await self.ctx.queues.run(QueueKey("disk-offering", msg.uuid), self._update, msg)

    async def _update(self, msg: APIUpdateDiskOfferingMsg) -> DiskOfferingEvent:
        changes = msg.model_dump(include={"name", "description"}, exclude_none=True, by_alias=False)
        await self.update_fields(msg.uuid, changes)
        auth = msg.require_auth()
        return DiskOfferingEvent(inventory=await self.answer(msg.uuid, "updated", auth))

    @handles(APIChangeDiskOfferingStateMsg)
    async def change_offering_state(self, msg: APIChangeDiskOfferingStateMsg) -> DiskOfferingEvent:
        inventory = await self.ctx.queues.run(
            QueueKey("disk-offering", msg.uuid),
            self.change_state,
            msg.uuid,
            msg.state_event,
            msg.require_auth(),
        )
        return DiskOfferingEvent(inventory=inventory)

    @handles(APIDeleteDiskOfferingMsg)
    async def delete(self, msg: APIDeleteDiskOfferingMsg) -> DiskOfferingEvent:
        await self.ctx.queues.run(
            QueueKey("disk-offering", msg.uuid),
            self.delete_with_children,
            msg.uuid,
            msg.delete_mode,
            msg.require_auth(),
        )
        return DiskOfferingEvent()
