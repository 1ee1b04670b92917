"""IP range handlers. An add is checked against every range of every L3 on the same L2,
so adds run in the L2's queue; a delete runs in the L3's queue, where allocations run, so
no address is handed out of a range while it is being deleted."""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from zstackpy.api.messages import AuthContext
from zstackpy.api.ownership import add_resource, may_use
from zstackpy.core.bus.message import Reply
from zstackpy.core.cascade import CascadeParticipant, DeleteMode, cascade_delete
from zstackpy.core.errors import SysErr, ZError
from zstackpy.core.ids import new_uuid
from zstackpy.core.service import handles
from zstackpy.core.workqueue import QueueKey
from zstackpy.services.network.errors import L3Err
from zstackpy.services.network.inventories import IpRangeInventory, ip_range_inventory
from zstackpy.services.network.l3.range_api import (
    IP_RANGE_SERVICE,
    APIAddIpRangeByNetworkCidrMsg,
    APIAddIpRangeMsg,
    APIDeleteIpRangeMsg,
    APIUpdateIpRangeMsg,
    CreateIpRangesMsg,
    CreateIpRangesReply,
    DeleteIpRangeMsg,
    IpRangeEvent,
    IpRangesEvent,
    NewIpRange,
)
from zstackpy.services.network.l3.ranges import (
    IpRangeSpec,
    range_from_bounds,
    ranges_from_cidr,
    spec_of,
)
from zstackpy.services.network.l3.usage import refuse_if_in_use
from zstackpy.services.network.models import IpRangeVO, L3NetworkVO, UsedIpVO
from zstackpy.services.network.queues import l2_queue, l3_queue
from zstackpy.services.resource_service import ResourceService

IP_RANGE_TYPE = "IpRangeVO"


class IpRangeService(ResourceService):
    name = IP_RANGE_SERVICE
    model = IpRangeVO
    inventory = IpRangeInventory
    resource_type = IP_RANGE_TYPE
    noun = "IP range"

    # ----- add --------------------------------------------------------------------------

    @handles(APIAddIpRangeMsg)
    async def add(self, msg: APIAddIpRangeMsg) -> IpRangeEvent:
        spec = range_from_bounds(msg.start_ip, msg.end_ip, msg.netmask, msg.gateway)
        assert msg.resource_uuid is not None  # the portal gives every create its UUID
        added = await self._store(msg, [(msg.resource_uuid, spec)])
        return IpRangeEvent(inventory=added[0])

    @handles(APIAddIpRangeByNetworkCidrMsg)
    async def add_by_cidr(self, msg: APIAddIpRangeByNetworkCidrMsg) -> IpRangesEvent:
        specs = ranges_from_cidr(msg.network_cidr, msg.gateway)
        assert msg.resource_uuid is not None
        uuids = [msg.resource_uuid, *(new_uuid() for _ in specs[1:])]
        added = await self._store(msg, list(zip(uuids, specs, strict=True)))
        return IpRangesEvent(inventory=added[0], inventories=added)

    async def _store(
        self,
        msg: APIAddIpRangeMsg | APIAddIpRangeByNetworkCidrMsg,
        specs: list[tuple[str, IpRangeSpec]],
    ) -> list[IpRangeInventory]:
        auth = msg.require_auth()
        async with self.ctx.db.session() as session:
            l3 = await _usable_l3(session, msg.l3_network_uuid, auth)
        ranges = [
            NewIpRange(
                uuid=uuid,
                name=msg.name,
                description=msg.description,
                ip_range_type=msg.ip_range_type,
                **spec.column_values(),
            )
            for uuid, spec in specs
        ]
        reply = await self.ctx.bus.request(
            CreateIpRangesMsg(
                l2_network_uuid=l3.l2_network_uuid,
                l3_network_uuid=l3.uuid,
                ranges=ranges,
                auth=auth,
            ),
            CreateIpRangesReply,
        )
        return reply.inventories

    @handles(CreateIpRangesMsg)
    async def create_ranges(self, msg: CreateIpRangesMsg) -> CreateIpRangesReply:
        return await self.ctx.queues.run(l2_queue(msg.l2_network_uuid), self._create_ranges, msg)

    async def _create_ranges(self, msg: CreateIpRangesMsg) -> CreateIpRangesReply:
        async with self.ctx.db.session() as session, session.begin():
            l3 = await session.get(L3NetworkVO, msg.l3_network_uuid)
            if l3 is None or l3.l2_network_uuid != msg.l2_network_uuid:
                raise ZError(
                    SysErr.RESOURCE_NOT_FOUND,
                    f"no L3 network with uuid {msg.l3_network_uuid}",
                    uuid=msg.l3_network_uuid,
                )
            for new in msg.ranges:
                await self.refuse_duplicate(session, new.uuid)
            await _check_against_l2(session, l3, msg.ranges)
            for new in msg.ranges:
                session.add(IpRangeVO(l3_network_uuid=l3.uuid, **new.model_dump()))
                add_resource(
                    session,
                    uuid=new.uuid,
                    resource_type=IP_RANGE_TYPE,
                    name=new.name,
                    auth=msg.auth,
                )
        inventories = []
        for new in msg.ranges:
            answered = await self._answer(new.uuid, msg.auth)
            inventories.append(answered)
        return CreateIpRangesReply(inventories=inventories)

    async def _answer(self, uuid: str, auth: AuthContext | None) -> IpRangeInventory:
        async with self.ctx.db.session() as session:
            row: IpRangeVO = await self.require(session, uuid)
        inventory = ip_range_inventory(row)
        await self._publish(uuid, "created", auth, inventory.model_dump(mode="json", by_alias=True))
        return inventory

    # ----- update, delete ---------------------------------------------------------------

    @handles(APIUpdateIpRangeMsg)
    async def update(self, msg: APIUpdateIpRangeMsg) -> IpRangeEvent:
        return await self.ctx.queues.run(QueueKey("ipRange", msg.uuid), self._update, msg)

    async def _update(self, msg: APIUpdateIpRangeMsg) -> IpRangeEvent:
        changes = msg.model_dump(include={"name", "description"}, exclude_none=True, by_alias=False)
        await self.update_fields(msg.uuid, changes)
        inventory = await self.answer(msg.uuid, "updated", msg.require_auth())
        assert isinstance(inventory, IpRangeInventory)
        return IpRangeEvent(inventory=inventory)

    @handles(APIDeleteIpRangeMsg)
    async def delete_api(self, msg: APIDeleteIpRangeMsg) -> IpRangeEvent:
        async with self.ctx.db.session() as session:
            row: IpRangeVO = await self.require(session, msg.uuid)
        reply = await self.ctx.bus.call(
            DeleteIpRangeMsg(
                l3_network_uuid=row.l3_network_uuid, uuid=msg.uuid, delete_mode=msg.delete_mode
            )
        )
        reply.raise_if_error()
        return IpRangeEvent()

    @handles(DeleteIpRangeMsg)
    async def delete_internal(self, msg: DeleteIpRangeMsg) -> Reply:
        await self.ctx.queues.run(l3_queue(msg.l3_network_uuid), self._delete, msg)
        return Reply()

    async def _delete(self, msg: DeleteIpRangeMsg) -> None:
        mode = DeleteMode(msg.delete_mode)
        async with self.ctx.db.session() as session:
            row = await session.get(IpRangeVO, msg.uuid)
            if row is None or row.l3_network_uuid != msg.l3_network_uuid:
                return  # deleted meanwhile (by its L3's delete): nothing left to do
            if mode is DeleteMode.PERMISSIVE:
                await refuse_if_in_use(
                    session, f"IP range {row.name} ({row.uuid})", range_uuids=[row.uuid]
                )
        await cascade_delete(
            self.ctx.plugins.extensions(CascadeParticipant), IP_RANGE_TYPE, [msg.uuid], mode
        )
        async with self.ctx.db.session() as session, session.begin():
            await session.execute(delete(UsedIpVO).where(UsedIpVO.ip_range_uuid == msg.uuid))
        await self.remove([msg.uuid], None)


async def _usable_l3(session: AsyncSession, uuid: str, auth: AuthContext) -> L3NetworkVO:
    l3 = await session.get(L3NetworkVO, uuid)
    if l3 is None or not await may_use(session, uuid, auth):
        raise ZError(SysErr.RESOURCE_NOT_FOUND, f"no L3 network with uuid {uuid}", uuid=uuid)
    return l3


async def _check_against_l2(
    session: AsyncSession, l3: L3NetworkVO, ranges: list[NewIpRange]
) -> None:
    """New ranges must not overlap any range on the L2 (one wire, one address space), and
    an L3's ranges share one subnet and gateway (its DHCP serves one subnet)."""
    rows = await session.execute(
        select(IpRangeVO, L3NetworkVO.name)
        .join(L3NetworkVO, L3NetworkVO.uuid == IpRangeVO.l3_network_uuid)
        .where(L3NetworkVO.l2_network_uuid == l3.l2_network_uuid)
        .order_by(IpRangeVO.create_date, IpRangeVO.uuid)
    )
    existing = list(rows.all())
    for new in ranges:
        spec = spec_of(new.start_ip, new.end_ip, new.network_cidr, new.gateway)
        for old, l3_name in existing:
            old_spec = spec_of(old.start_ip, old.end_ip, old.network_cidr, old.gateway)
            if old_spec.overlaps(spec.start, spec.end):
                raise ZError(
                    L3Err.IP_RANGE_OVERLAP,
                    f"range {spec.start}-{spec.end} overlaps range {old.name} ({old.uuid}, "
                    f"{old.start_ip}-{old.end_ip}) of L3 network {l3_name} "
                    f"({old.l3_network_uuid}) on the same L2 network",
                    overlapping_range_uuid=old.uuid,
                    overlapping_range=f"{old.start_ip}-{old.end_ip}",
                    overlapping_l3_network_uuid=old.l3_network_uuid,
                )
            if old.l3_network_uuid == l3.uuid and (
                old.network_cidr != new.network_cidr or old.gateway != new.gateway
            ):
                raise ZError(
                    SysErr.INVALID_ARGUMENT,
                    f"L3 network {l3.name} has range {old.name} in subnet {old.network_cidr} "
                    f"with gateway {old.gateway}: its ranges must all share one subnet and "
                    f"gateway, not {new.network_cidr} / {new.gateway}",
                    existing_range_uuid=old.uuid,
                    network_cidr=old.network_cidr,
                    gateway=old.gateway,
                )
