"""L3 network handlers: every change of an L3 network (and of its ranges' addresses) runs
in its work queue (``l3:<uuid>``) on the node owning it.

L3 networks belong to L2 networks: an L2's delete deletes them, unless one refuses
because addresses of it are in use (Permissive mode).
"""

from __future__ import annotations

from ipaddress import ip_address
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from zstackpy.api.events import ResourceChangedEvent
from zstackpy.api.messages import AuthContext, Inventory
from zstackpy.api.ownership import add_resource, may_use, remove_resources
from zstackpy.core.bus.message import Reply
from zstackpy.core.cascade import CascadeChildren, CascadeParticipant, DeleteMode, cascade_delete
from zstackpy.core.coalesce import CoalescedReads
from zstackpy.core.context import NodeContext
from zstackpy.core.errors import SysErr, ZError
from zstackpy.core.service import handles
from zstackpy.services.network.errors import L3Err
from zstackpy.services.network.inventories import L3_LOAD_OPTIONS, L3NetworkInventory, l3_inventory
from zstackpy.services.network.l2.bridges import bridge_name
from zstackpy.services.network.l3.api import (
    APIAddDnsToL3NetworkMsg,
    APIChangeL3NetworkStateMsg,
    APICreateL3NetworkMsg,
    APIDeleteL3NetworkMsg,
    APIRemoveDnsFromL3NetworkMsg,
    APIUpdateL3NetworkMsg,
    DeleteL3NetworkMsg,
    L3NetworkEvent,
)
from zstackpy.services.network.l3.usage import refuse_if_in_use
from zstackpy.services.network.messages import (
    L3_NETWORK_SERVICE,
    GetL3NetworksMsg,
    GetL3NetworksReply,
    L3NetworkSummary,
)
from zstackpy.services.network.models import (
    L2_VLAN,
    IpRangeVO,
    L2NetworkClusterRefVO,
    L2NetworkVO,
    L3NetworkDnsVO,
    L3NetworkVO,
    NetworkServiceL3NetworkRefVO,
    UsedIpVO,
)
from zstackpy.services.network.queues import l3_queue
from zstackpy.services.resource_service import Change, ResourceService

L3_TYPE = "L3NetworkVO"
IP_RANGE_TYPE = "IpRangeVO"
_L2_TYPE = "L2NetworkVO"


def check_system_category(system: bool, category: str) -> None:
    """ZStack's rule: a Private network is never a system one, a System one always is."""
    if (category == "Private" and system) or (category == "System" and not system):
        raise ZError(
            SysErr.INVALID_ARGUMENT,
            f"category {category} with system={str(system).lower()} is not a valid combination "
            "(Private needs system=false, System needs system=true, Public takes either)",
            category=category,
            system=system,
        )


class L3NetworkService(ResourceService):
    name = L3_NETWORK_SERVICE
    model = L3NetworkVO
    inventory = L3NetworkInventory
    resource_type = L3_TYPE
    noun = "L3 network"

    # ----- create, update, state ------------------------------------------------------

    def __init__(self, ctx: NodeContext) -> None:
        super().__init__(ctx)
        self._network_reads: CoalescedReads[tuple[str, ...], list[L3NetworkSummary]] = (
            CoalescedReads(self._read_networks)
        )

    @handles(APICreateL3NetworkMsg)
    async def create(self, msg: APICreateL3NetworkMsg) -> L3NetworkEvent:
        assert msg.resource_uuid is not None  # the portal gives every create its UUID
        return await self.ctx.queues.run(l3_queue(msg.resource_uuid), self._create, msg)

    async def _create(self, msg: APICreateL3NetworkMsg) -> L3NetworkEvent:
        uuid, auth = msg.resource_uuid, msg.require_auth()
        assert uuid is not None
        check_system_category(msg.system, msg.category)
        async with self.ctx.db.session() as session, session.begin():
            await self.refuse_duplicate(session, uuid)
            l2 = await session.get(L2NetworkVO, msg.l2_network_uuid)
            if l2 is None or not await may_use(session, msg.l2_network_uuid, auth):
                raise ZError(
                    SysErr.RESOURCE_NOT_FOUND,
                    f"no L2 network with uuid {msg.l2_network_uuid}",
                    uuid=msg.l2_network_uuid,
                )
            session.add(
                L3NetworkVO(
                    uuid=uuid,
                    zone_uuid=l2.zone_uuid,
                    l2_network_uuid=l2.uuid,
                    name=msg.name,
                    description=msg.description,
                    type=msg.type,
                    state="Enabled",
                    system=msg.system,
                    category=msg.category,
                    ip_version=msg.ip_version,
                    dns_domain=msg.dns_domain,
                    enable_ipam=msg.enable_ipam,
                    isolated=False,
                )
            )
            add_resource(session, uuid=uuid, resource_type=L3_TYPE, name=msg.name, auth=auth)
        return L3NetworkEvent(inventory=await self.answer(uuid, "created", auth))

    @handles(APIUpdateL3NetworkMsg)
    async def update(self, msg: APIUpdateL3NetworkMsg) -> L3NetworkEvent:
        return await self.ctx.queues.run(l3_queue(msg.uuid), self._update, msg)

    async def _update(self, msg: APIUpdateL3NetworkMsg) -> L3NetworkEvent:
        # Column names, not wire names: messages serialize by alias by default.
        changes = msg.model_dump(
            include={"name", "description", "dns_domain", "category", "system"},
            exclude_none=True,
            by_alias=False,
        )
        if "category" in changes or "system" in changes:
            async with self.ctx.db.session() as session:
                row: L3NetworkVO = await self.require(session, msg.uuid)
            check_system_category(
                changes.get("system", row.system), changes.get("category", row.category)
            )
        await self.update_fields(msg.uuid, changes)
        return L3NetworkEvent(inventory=await self.answer(msg.uuid, "updated", msg.require_auth()))

    @handles(APIChangeL3NetworkStateMsg)
    async def change_l3_state(self, msg: APIChangeL3NetworkStateMsg) -> L3NetworkEvent:
        return await self.ctx.queues.run(l3_queue(msg.uuid), self._change_state, msg)

    async def _change_state(self, msg: APIChangeL3NetworkStateMsg) -> L3NetworkEvent:
        auth = msg.require_auth()
        return L3NetworkEvent(inventory=await self.change_state(msg.uuid, msg.state_event, auth))

    # ----- DNS --------------------------------------------------------------------------

    @handles(APIAddDnsToL3NetworkMsg)
    async def add_dns(self, msg: APIAddDnsToL3NetworkMsg) -> L3NetworkEvent:
        return await self.ctx.queues.run(l3_queue(msg.l3_network_uuid), self._add_dns, msg)

    async def _add_dns(self, msg: APIAddDnsToL3NetworkMsg) -> L3NetworkEvent:
        try:
            dns = str(ip_address(msg.dns.strip()))
        except ValueError:
            raise ZError(
                SysErr.INVALID_ARGUMENT,
                f"dns {msg.dns!r} is not an IP address",
                field="dns",
                value=msg.dns,
            ) from None
        async with self.ctx.db.session() as session, session.begin():
            await self.require(session, msg.l3_network_uuid)
            rows = await session.execute(
                select(L3NetworkDnsVO.dns).where(
                    L3NetworkDnsVO.l3_network_uuid == msg.l3_network_uuid
                )
            )
            if dns in set(rows.scalars()):
                raise ZError(
                    L3Err.DUPLICATE_DNS,
                    f"dns {dns} is already a DNS server of L3 network {msg.l3_network_uuid}",
                    dns=dns,
                    l3_network_uuid=msg.l3_network_uuid,
                )
            last = (
                await session.execute(
                    select(func.max(L3NetworkDnsVO.position)).where(
                        L3NetworkDnsVO.l3_network_uuid == msg.l3_network_uuid
                    )
                )
            ).scalar_one()
            session.add(
                L3NetworkDnsVO(
                    l3_network_uuid=msg.l3_network_uuid,
                    dns=dns,
                    position=0 if last is None else last + 1,
                )
            )
        auth = msg.require_auth()
        return L3NetworkEvent(inventory=await self.answer(msg.l3_network_uuid, "updated", auth))

    @handles(APIRemoveDnsFromL3NetworkMsg)
    async def remove_dns(self, msg: APIRemoveDnsFromL3NetworkMsg) -> L3NetworkEvent:
        return await self.ctx.queues.run(l3_queue(msg.l3_network_uuid), self._remove_dns, msg)

    async def _remove_dns(self, msg: APIRemoveDnsFromL3NetworkMsg) -> L3NetworkEvent:
        # Removing a server the network does not have changes nothing, and is no error.
        async with self.ctx.db.session() as session, session.begin():
            await self.require(session, msg.l3_network_uuid)
            await session.execute(
                delete(L3NetworkDnsVO).where(
                    L3NetworkDnsVO.l3_network_uuid == msg.l3_network_uuid,
                    L3NetworkDnsVO.dns == msg.dns.strip(),
                )
            )
        auth = msg.require_auth()
        return L3NetworkEvent(inventory=await self.answer(msg.l3_network_uuid, "updated", auth))

    # ----- delete -----------------------------------------------------------------------

    @handles(APIDeleteL3NetworkMsg)
    async def delete_api(self, msg: APIDeleteL3NetworkMsg) -> L3NetworkEvent:
        auth = msg.require_auth()
        await self.ctx.queues.run(l3_queue(msg.uuid), self._delete, msg.uuid, msg.delete_mode, auth)
        return L3NetworkEvent()

    @handles(DeleteL3NetworkMsg)
    async def delete_internal(self, msg: DeleteL3NetworkMsg) -> Reply:
        await self.ctx.queues.run(l3_queue(msg.uuid), self._delete, msg.uuid, msg.delete_mode, None)
        return Reply()

    async def _delete(self, uuid: str, mode: str, auth: AuthContext | None) -> None:
        delete_mode = DeleteMode(mode)
        async with self.ctx.db.session() as session:
            l3: L3NetworkVO = await self.require(session, uuid)
            if delete_mode is DeleteMode.PERMISSIVE:
                # Asked for directly (auth set), VM NICs on it refuse too; inside a parent's
                # cascade they were checked there and the VM cascade detaches them.
                await refuse_if_in_use(
                    session,
                    f"L3 network {l3.name} ({uuid})",
                    l3_uuids=[uuid],
                    ignore_vm_nics=auth is None,
                )
            ranges = await session.execute(
                select(IpRangeVO.uuid).where(IpRangeVO.l3_network_uuid == uuid)
            )
            range_uuids = list(ranges.scalars())
        participants = self.ctx.plugins.extensions(CascadeParticipant)
        # What hangs off the L3 (tags, and NICs once VMs exist), then off its ranges.
        await cascade_delete(participants, L3_TYPE, [uuid], delete_mode)
        if range_uuids:
            await cascade_delete(participants, IP_RANGE_TYPE, range_uuids, delete_mode)
        async with self.ctx.db.session() as session, session.begin():
            await _delete_rows(session, uuid, range_uuids)
        for range_uuid in range_uuids:
            await self.ctx.bus.publish(
                ResourceChangedEvent(
                    resource_type=IP_RANGE_TYPE,
                    resource_uuid=range_uuid,
                    change="deleted",
                    account_uuid=auth.account_uuid if auth else None,
                    inventory=None,
                )
            )
        await self._publish(uuid, "deleted", auth, None)

    async def answer(self, uuid: str, change: Change, auth: AuthContext) -> Inventory:
        """The inventory with its ranges and DNS servers, after announcing the change."""
        inventory = await load_l3_inventory(self.ctx.db.session(), uuid)
        await self._publish(uuid, change, auth, inventory.model_dump(mode="json", by_alias=True))
        return inventory

    # ----- reads for other services -----------------------------------------------------

    @handles(GetL3NetworksMsg)
    async def get_networks(self, msg: GetL3NetworksMsg) -> GetL3NetworksReply:
        # A burst of VM creations asks for the same networks: one read serves them.
        networks = await self._network_reads.read(tuple(dict.fromkeys(msg.l3_network_uuids)))
        return GetL3NetworksReply(networks=list(networks))

    async def _read_networks(self, wanted: tuple[str, ...]) -> list[L3NetworkSummary]:
        async with self.ctx.db.read_session() as session:
            rows = await session.execute(
                select(L3NetworkVO, L2NetworkVO)
                .join(L2NetworkVO, L2NetworkVO.uuid == L3NetworkVO.l2_network_uuid)
                .options(selectinload(L3NetworkVO.dns_entries))
                .where(L3NetworkVO.uuid.in_(wanted))
            )
            pairs = {l3.uuid: (l3, l2) for l3, l2 in rows.all()}
            refs = await session.execute(
                select(L2NetworkClusterRefVO.l2_network_uuid, L2NetworkClusterRefVO.cluster_uuid)
                .where(
                    L2NetworkClusterRefVO.l2_network_uuid.in_({l2.uuid for _, l2 in pairs.values()})
                )
                .order_by(L2NetworkClusterRefVO.id)
            )
            clusters: dict[str, list[str]] = {}
            for l2_uuid, cluster_uuid in refs.all():
                clusters.setdefault(l2_uuid, []).append(cluster_uuid)
        missing = [u for u in wanted if u not in pairs]
        if missing:
            raise ZError(
                SysErr.RESOURCE_NOT_FOUND,
                f"no L3 network with uuid {', '.join(missing)}",
                l3_network_uuids=missing,
            )
        return [_summary(*pairs[u], clusters.get(pairs[u][1].uuid, [])) for u in wanted]

    # ----- CascadeParticipant: L3 networks belong to L2 networks ------------------------

    async def cascade_children(
        self, parent_type: str, parent_uuids: tuple[str, ...]
    ) -> CascadeChildren | None:
        if parent_type != _L2_TYPE:
            return None
        async with self.ctx.db.session() as session:
            rows = await session.execute(
                select(L3NetworkVO.uuid).where(L3NetworkVO.l2_network_uuid.in_(parent_uuids))
            )
            return CascadeChildren(L3_TYPE, tuple(rows.scalars()))

    async def cascade_check(self, children: CascadeChildren) -> None:
        async with self.ctx.db.session() as session:
            await refuse_if_in_use(
                session,
                f"L3 networks {', '.join(children.uuids)}",
                l3_uuids=children.uuids,
                ignore_vm_nics=True,
            )

    async def cascade_delete(self, children: CascadeChildren, mode: DeleteMode) -> None:
        replies = await self.ctx.bus.call_many(
            [DeleteL3NetworkMsg(uuid=u, delete_mode=mode.value) for u in children.uuids],
            parallelism=8,
        )
        for reply in replies:
            reply.raise_if_error()


async def load_l3_inventory(session: AsyncSession, uuid: str) -> L3NetworkInventory:
    """The L3's inventory with its ranges and DNS servers; SYS.1003 if it is gone."""
    async with session:
        row = (
            await session.execute(
                select(L3NetworkVO).options(*L3_LOAD_OPTIONS).where(L3NetworkVO.uuid == uuid)
            )
        ).scalar_one_or_none()
    if row is None:
        raise ZError(SysErr.RESOURCE_NOT_FOUND, f"no L3 network with uuid {uuid}", uuid=uuid)
    return l3_inventory(row)


async def _delete_rows(session: AsyncSession, uuid: str, range_uuids: list[str]) -> None:
    """The L3's own rows, children before parents (foreign keys)."""
    await session.execute(delete(UsedIpVO).where(UsedIpVO.l3_network_uuid == uuid))
    await session.execute(delete(IpRangeVO).where(IpRangeVO.l3_network_uuid == uuid))
    await session.execute(delete(L3NetworkDnsVO).where(L3NetworkDnsVO.l3_network_uuid == uuid))
    await session.execute(
        delete(NetworkServiceL3NetworkRefVO).where(
            NetworkServiceL3NetworkRefVO.l3_network_uuid == uuid
        )
    )
    await session.execute(delete(L3NetworkVO).where(L3NetworkVO.uuid == uuid))
    await remove_resources(session, [uuid, *range_uuids])


def _summary(l3: L3NetworkVO, l2: L2NetworkVO, clusters: list[str]) -> L3NetworkSummary:
    vlan = l2.virtual_network_id if l2.type == L2_VLAN else None
    fields: dict[str, Any] = {
        "uuid": l3.uuid,
        "name": l3.name,
        "zone_uuid": l3.zone_uuid,
        "l2_network_uuid": l2.uuid,
        "state": l3.state,
        "system": l3.system,
        "category": l3.category,
        "dns": [d.dns for d in l3.dns_entries],
        "dns_domain": l3.dns_domain,
        "physical_interface": l2.physical_interface,
        "vlan": vlan,
        "bridge_name": bridge_name(l2.physical_interface, vlan),
        "attached_cluster_uuids": clusters,
    }
    return L3NetworkSummary(**fields)
