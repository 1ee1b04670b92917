"""The virtual-router service: offerings, and the router of each guest L3 network, made,
reconnected and destroyed in that L3's router queue on its owner node (``router_queue``).
The monitor (``monitor.py``) brings back routers that stop answering."""

from __future__ import annotations

import logging

from sqlalchemy import select, update

from zstackpy.api.ownership import add_resource
from zstackpy.core.context import NodeContext
from zstackpy.core.db import ResourceVO
from zstackpy.core.errors import SysErr, ZError
from zstackpy.core.service import Service, handles
from zstackpy.core.workqueue import QueueKey
from zstackpy.services.image.messages import GetImageMsg, GetImageReply
from zstackpy.services.network.messages import GetL3NetworksMsg, GetL3NetworksReply
from zstackpy.services.offering.messages import DEFAULT_HOST_ALLOCATOR_STRATEGY
from zstackpy.services.offering.models import InstanceOfferingVO
from zstackpy.services.virtualrouter.api import (
    APICreateVirtualRouterOfferingMsg,
    APIReconnectVirtualRouterMsg,
    ApplianceVmEvent,
    VirtualRouterOfferingEvent,
)
from zstackpy.services.virtualrouter.flows import (
    VM_TIMEOUT_S,
    ConnectVirtualRouter,
    RouterCtx,
)
from zstackpy.services.virtualrouter.messages import (
    VIRTUAL_ROUTER,
    VIRTUAL_ROUTER_SERVICE,
    ApplianceStatus,
    DestroyVirtualRouterMsg,
    GetVirtualRouterMsg,
    GetVirtualRouterReply,
    RouterView,
    VirtualRouterErr,
)
from zstackpy.services.virtualrouter.models import ApplianceVmVO, VirtualRouterOfferingVO
from zstackpy.services.virtualrouter.monitor import RouterMonitor, ping_timeout
from zstackpy.services.virtualrouter.query import appliance_inventory, offering_inventory
from zstackpy.services.virtualrouter.routers import (
    answers,
    record_of,
    router_queue,
    set_status,
    view_of,
)
from zstackpy.services.virtualrouter.tables import router_services
from zstackpy.services.vm.messages import DeleteVmMsg, VmState
from zstackpy.services.zone.models import ZoneVO

log = logging.getLogger(__name__)

CREATE_CHAIN = "virtual-router-create"
RECONNECT_CHAIN = "virtual-router-reconnect"
_GONE = {VmState.DESTROYED.value}


class VirtualRouterService(Service):
    name = VIRTUAL_ROUTER_SERVICE

    def __init__(self, ctx: NodeContext) -> None:
        super().__init__(ctx)
        self.monitor = RouterMonitor(ctx, self.recover_queued)

    async def node_ready(self) -> None:
        self.monitor.start()

    async def stop(self) -> None:
        await self.monitor.stop()

    # ----- offerings -----------------------------------------------------------------------

    @handles(APICreateVirtualRouterOfferingMsg)
    async def create_offering(
        self, msg: APICreateVirtualRouterOfferingMsg
    ) -> VirtualRouterOfferingEvent:
        assert msg.resource_uuid is not None  # the portal gives every create its UUID
        key = QueueKey("instance-offering", msg.resource_uuid)
        return await self.ctx.queues.run(key, self._create_offering, msg)

    async def _create_offering(
        self, msg: APICreateVirtualRouterOfferingMsg
    ) -> VirtualRouterOfferingEvent:
        uuid, auth = msg.resource_uuid, msg.require_auth()
        assert uuid is not None
        public = msg.public_network_uuid or msg.management_network_uuid
        await self._check_offering(msg, public)
        async with self.ctx.db.session() as session, session.begin():
            if await session.get(InstanceOfferingVO, uuid) is not None:
                raise ZError(
                    SysErr.CREATE_RESOURCE, f"an instance offering with uuid {uuid} exists"
                )
            if msg.is_default:
                # One default per zone: the new one takes the place.
                await session.execute(
                    update(VirtualRouterOfferingVO)
                    .where(VirtualRouterOfferingVO.zone_uuid == msg.zone_uuid)
                    .values(is_default=False)
                )
            session.add(
                InstanceOfferingVO(
                    uuid=uuid,
                    name=msg.name,
                    description=msg.description,
                    cpu_num=msg.cpu_num,
                    cpu_speed=0,
                    memory_size=msg.memory_size,
                    reserved_memory_size=msg.reserved_memory_size,
                    allocator_strategy=msg.allocator_strategy or DEFAULT_HOST_ALLOCATOR_STRATEGY,
                    sort_key=msg.sort_key,
                    state="Enabled",
                    type=VIRTUAL_ROUTER,
                )
            )
            await session.flush()
            session.add(
                VirtualRouterOfferingVO(
                    uuid=uuid,
                    zone_uuid=msg.zone_uuid,
                    management_network_uuid=msg.management_network_uuid,
                    public_network_uuid=public,
                    image_uuid=msg.image_uuid,
                    is_default=msg.is_default,
                )
            )
            add_resource(
                session, uuid=uuid, resource_type="InstanceOfferingVO", name=msg.name, auth=auth
            )
        async with self.ctx.db.session() as session:
            row = (
                await session.execute(
                    select(VirtualRouterOfferingVO, InstanceOfferingVO)
                    .join(
                        InstanceOfferingVO, InstanceOfferingVO.uuid == VirtualRouterOfferingVO.uuid
                    )
                    .where(VirtualRouterOfferingVO.uuid == uuid)
                )
            ).one()
        return VirtualRouterOfferingEvent(inventory=offering_inventory(row[0], row[1]))

    async def _check_offering(self, msg: APICreateVirtualRouterOfferingMsg, public: str) -> None:
        """The zone exists, the networks are in it, the image is usable: else nothing is
        made (SYS.1003 for what does not exist, VR.1002 for what does not fit)."""
        async with self.ctx.db.session() as session:
            if await session.get(ZoneVO, msg.zone_uuid) is None:
                raise ZError(
                    SysErr.RESOURCE_NOT_FOUND,
                    f"no zone with uuid {msg.zone_uuid}",
                    uuid=msg.zone_uuid,
                )
        networks = await self.ctx.bus.request(
            GetL3NetworksMsg(l3_network_uuids=sorted({msg.management_network_uuid, public})),
            GetL3NetworksReply,
        )
        for net in networks.networks:
            if net.zone_uuid != msg.zone_uuid:
                raise ZError(
                    VirtualRouterErr.BAD_OFFERING,
                    f"L3 network {net.uuid} is not in zone {msg.zone_uuid}",
                    l3NetworkUuid=net.uuid,
                    zoneUuid=msg.zone_uuid,
                )
        image = (
            await self.ctx.bus.request(GetImageMsg(image_uuid=msg.image_uuid), GetImageReply)
        ).inventory
        if image is None:
            raise ZError(
                SysErr.RESOURCE_NOT_FOUND,
                f"no image with uuid {msg.image_uuid}",
                uuid=msg.image_uuid,
            )
        if image.media_type != "RootVolumeTemplate":
            raise ZError(
                VirtualRouterErr.BAD_OFFERING,
                f"image {image.uuid} is a {image.media_type}: an appliance boots from a root "
                "volume template",
                imageUuid=image.uuid,
            )

    # ----- routers ----------------------------------------------------------------------

    @handles(GetVirtualRouterMsg)
    async def get_router(self, msg: GetVirtualRouterMsg) -> GetVirtualRouterReply:
        router = await self.ctx.queues.run(router_queue(msg.l3_network_uuid), self._router, msg)
        return GetVirtualRouterReply(router=router)

    async def _router(self, msg: GetVirtualRouterMsg) -> RouterView | None:
        l3_uuid = msg.l3_network_uuid
        found = await record_of(self.ctx, l3_uuid)
        if found is None:
            if not msg.ensure:
                return None
            return await self._create(l3_uuid)
        record, state = found
        if record.status == ApplianceStatus.CONNECTED and state == VmState.RUNNING:
            if msg.reconnect:
                return await self._connect(record)
            router = await view_of(self.ctx, record)
            if not msg.unreachable or router is None:
                return router
            if await answers(self.ctx, router, ping_timeout(self.ctx)):
                return router
            await set_status(self.ctx, record.uuid, ApplianceStatus.DISCONNECTED)
        if not msg.ensure and not msg.reconnect:
            return None  # what it should hold is sent whole when it is back
        return await self._recover(record, state)

    async def _create(self, l3_uuid: str) -> RouterView:
        ctx = RouterCtx(node=self.ctx, l3_uuid=l3_uuid)
        await self.ctx.flows.run(CREATE_CHAIN, ctx)
        assert ctx.router is not None
        return ctx.router

    async def _connect(self, record: ApplianceVmVO) -> RouterView:
        """Its agent booted and sent everything again (the VM runs)."""
        ctx = RouterCtx(node=self.ctx, l3_uuid=record.guest_l3_network_uuid, vm_uuid=record.uuid)
        # One step of the reconnect chain: the VM runs, only its agent needs connecting.
        flow = ConnectVirtualRouter()
        try:
            await flow.run(ctx)
        except BaseException:
            await flow.rollback(ctx)
            raise
        assert ctx.router is not None
        return ctx.router

    async def _recover(self, record: ApplianceVmVO, state: str) -> RouterView:
        """Started again and sent everything; re-created when that fails."""
        l3_uuid = record.guest_l3_network_uuid
        if state not in _GONE:
            ctx = RouterCtx(
                node=self.ctx,
                l3_uuid=l3_uuid,
                vm_uuid=record.uuid,
                account_uuid=await self._owner(record.uuid),
            )
            try:
                await self.ctx.flows.run(RECONNECT_CHAIN, ctx)
                assert ctx.router is not None
                log.info("virtual router %s of L3 %s is back", record.uuid, l3_uuid)
                return ctx.router
            except ZError as exc:
                log.warning(
                    "virtual router %s could not be brought back (%s): re-creating it",
                    record.uuid,
                    exc.description,
                )
        await self._delete_vm(record.uuid)
        return await self._create(l3_uuid)

    async def _owner(self, uuid: str) -> str:
        async with self.ctx.db.session() as session:
            account = await session.scalar(
                select(ResourceVO.account_uuid).where(ResourceVO.uuid == uuid)
            )
        if account is None:
            raise ZError(SysErr.RESOURCE_NOT_FOUND, f"no owner of virtual router {uuid}")
        return account

    async def _delete_vm(self, vm_uuid: str) -> None:
        reply = await self.ctx.bus.call(DeleteVmMsg(vm_instance_uuid=vm_uuid), timeout=VM_TIMEOUT_S)
        reply.raise_if_error()

    async def recover_queued(self, l3_uuid: str) -> None:
        """The monitor's: in the router's queue, bring it back if it is still down (an
        operation may have connected it since the monitor looked)."""

        async def run() -> None:
            found = await record_of(self.ctx, l3_uuid)
            if found is None:
                return
            record, state = found
            if record.status == ApplianceStatus.CONNECTED and state == VmState.RUNNING:
                router = await view_of(self.ctx, record)
                if router is None or await answers(self.ctx, router, ping_timeout(self.ctx)):
                    return
            await set_status(self.ctx, record.uuid, ApplianceStatus.DISCONNECTED)
            await self._recover(record, state)

        await self.ctx.queues.run(router_queue(l3_uuid), run)

    @handles(DestroyVirtualRouterMsg)
    async def destroy_router(self, msg: DestroyVirtualRouterMsg) -> GetVirtualRouterReply:
        async def run() -> None:
            found = await record_of(self.ctx, msg.l3_network_uuid)
            if found is None:
                return
            if msg.if_unused and await router_services(self.ctx, msg.l3_network_uuid):
                return  # attached again meanwhile: the router stays
            await self._delete_vm(found[0].uuid)

        await self.ctx.queues.run(router_queue(msg.l3_network_uuid), run)
        return GetVirtualRouterReply()

    @handles(APIReconnectVirtualRouterMsg)
    async def reconnect(self, msg: APIReconnectVirtualRouterMsg) -> ApplianceVmEvent:
        async with self.ctx.db.session() as session:
            record = await session.get(ApplianceVmVO, msg.vm_instance_uuid)
        if record is None:
            raise ZError(
                SysErr.RESOURCE_NOT_FOUND,
                f"no virtual router with uuid {msg.vm_instance_uuid}",
                uuid=msg.vm_instance_uuid,
            )
        await self.ctx.bus.request(
            GetVirtualRouterMsg(l3_network_uuid=record.guest_l3_network_uuid, reconnect=True),
            GetVirtualRouterReply,
            timeout=VM_TIMEOUT_S * 2,
        )
        return ApplianceVmEvent(inventory=await appliance_inventory(self.ctx, msg.vm_instance_uuid))
