"""The IP allocator: never hands out one address twice.

Allocations of one L3 network run in its work queue on the node owning it, so they never
interleave. Concurrent requests are batched (core.batching.QueueBatcher): the first job
the queue grants serves every request pending at that moment in one transaction (one
scan, one insert of all rows, one commit). UNIQUE (l3_network_uuid, ip_in_long) stays the
last guard: if it fires (a node that owned the L3 before a ring change still wrote), the
batch is planned again from what the database now holds.

Sequential choice: each range keeps a cursor (a hint, per node) after the last address
handed out; the scan starts there and wraps around, so released addresses come back once
the range has been walked.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from functools import partial
from ipaddress import IPv4Address

from sqlalchemy import delete, func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from zstackpy.core.batching import QueueBatcher
from zstackpy.core.context import NodeContext
from zstackpy.core.db.retry import retrying
from zstackpy.core.errors import SysErr, ZError
from zstackpy.core.ids import new_uuid
from zstackpy.services.network.errors import L3Err
from zstackpy.services.network.inventories import UsedIpInventory, used_ip_inventory
from zstackpy.services.network.ipam.scan import free_addresses, is_used
from zstackpy.services.network.l3.ranges import parse_ipv4
from zstackpy.services.network.messages import AllocateIpMsg, ReleaseIpMsg
from zstackpy.services.network.models import IpRangeVO, L3NetworkVO, UsedIpVO
from zstackpy.services.network.queues import l3_queue

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 5
BATCH_MAX = 1000  # requests per transaction; the rest wait for the next job


@dataclass(slots=True)
class _Plan:
    """What one batch decided, by the request's place in the batch: an address, or why
    there is none."""

    chosen: dict[int, tuple[IpRangeVO, int]] = field(default_factory=dict)
    failed: dict[int, ZError] = field(default_factory=dict)


def _range_bounds(ip_range: IpRangeVO) -> tuple[int, int]:
    return int(IPv4Address(ip_range.start_ip)), int(IPv4Address(ip_range.end_ip))


def _range_size(ip_range: IpRangeVO) -> int:
    low, high = _range_bounds(ip_range)
    return high - low + 1


def _describe(ranges: list[IpRangeVO]) -> str:
    if not ranges:
        return "it has no IP range"
    return "ranges: " + ", ".join(f"{r.name} {r.start_ip}-{r.end_ip}" for r in ranges)


class IpAllocator:
    """Owned by the IPAM service; one per node."""

    def __init__(self, ctx: NodeContext) -> None:
        self.ctx = ctx
        self._batcher: QueueBatcher[AllocateIpMsg, UsedIpInventory] = QueueBatcher(
            ctx.queues, self._allocate, max_batch=BATCH_MAX
        )
        self._cursors: dict[str, int] = {}  # range uuid -> next address to try

    async def allocate(self, msg: AllocateIpMsg) -> UsedIpInventory:
        """Raises L3.1003, L3.1005, L3.1006, SYS.1003 (no such L3) or SYS.1007 (a bad
        required IP). A caller cancelled after its batch committed leaves its address
        allocated: callers release what they roll back (ReleaseIpMsg)."""
        return await self._batcher.submit(l3_queue(msg.l3_network_uuid), msg)

    async def release(self, msg: ReleaseIpMsg) -> None:
        await self.ctx.queues.run(l3_queue(msg.l3_network_uuid), self._release, msg)

    async def _release(self, msg: ReleaseIpMsg) -> None:
        if msg.used_ip_uuid is not None:
            which = UsedIpVO.uuid == msg.used_ip_uuid
        else:
            assert msg.ip is not None  # the message checks one of the two is given
            which = UsedIpVO.ip_in_long == int(parse_ipv4(msg.ip, "ip"))
        async with self.ctx.db.session() as session, session.begin():
            await session.execute(
                delete(UsedIpVO).where(UsedIpVO.l3_network_uuid == msg.l3_network_uuid, which)
            )

    # ----- one batch ----------------------------------------------------------------------

    async def _allocate(self, batch: list[AllocateIpMsg]) -> list[UsedIpInventory | ZError]:
        """One batch of one L3 network (the queue's): an outcome per request, in order."""
        l3_uuid = batch[0].l3_network_uuid
        for attempt in range(1, MAX_ATTEMPTS + 1):
            try:
                results = await retrying(
                    partial(self._attempt, l3_uuid, batch), "allocating IP addresses"
                )
                return [results[i] for i in range(len(batch))]
            except IntegrityError as exc:
                # Someone else stored one of our addresses: plan again from the database.
                log.warning(
                    "IP allocation conflict on L3 %s (attempt %d): %s", l3_uuid, attempt, exc
                )
        raise ZError(
            L3Err.ALLOCATION_CONFLICT,
            f"the database refused the addresses chosen in L3 network {l3_uuid} "
            f"{MAX_ATTEMPTS} times",
            l3_network_uuid=l3_uuid,
        )

    async def _attempt(
        self, l3_uuid: str, batch: list[AllocateIpMsg]
    ) -> dict[int, UsedIpInventory | ZError]:
        """One transaction: read the L3 with its ranges and their use, plan, insert."""
        async with self.ctx.db.session() as session, session.begin():
            l3, ranges, counts = await _l3_with_ranges(session, l3_uuid)
            plan = await self._plan(session, l3, ranges, counts, batch)
            uuids = {request: new_uuid() for request in plan.chosen}
            values: dict[int, dict[str, object]] = {
                request: {
                    "uuid": uuids[request],
                    "ip_range_uuid": ip_range.uuid,
                    "l3_network_uuid": l3_uuid,
                    "ip": str(IPv4Address(address)),
                    "ip_in_long": address,
                    "gateway": ip_range.gateway,
                    "netmask": ip_range.netmask,
                    "ip_version": 4,
                    "used_for": batch[request].used_for,
                    "vm_nic_uuid": batch[request].vm_nic_uuid,
                }
                for request, (ip_range, address) in plan.chosen.items()
            }
            stored: dict[str, UsedIpInventory] = {}
            if values:
                # RETURNING: the rows come back with their dates in the same statement.
                inserted = await session.execute(
                    insert(UsedIpVO).returning(UsedIpVO), list(values.values())
                )
                stored = {row.uuid: used_ip_inventory(row) for row in inserted.scalars()}
        # Committed: the cursors move past what was handed out.
        for ip_range, address in plan.chosen.values():
            low, high = _range_bounds(ip_range)
            self._cursors[ip_range.uuid] = address + 1 if address < high else low
        results: dict[int, UsedIpInventory | ZError] = dict(plan.failed)
        for request, uuid in uuids.items():
            results[request] = stored[uuid]
        return results

    async def _plan(
        self,
        session: AsyncSession,
        l3: L3NetworkVO,
        ranges: list[IpRangeVO],
        counts: dict[str, int],
        batch: list[AllocateIpMsg],
    ) -> _Plan:
        plan = _Plan()
        taken: set[int] = set()
        by_uuid = {r.uuid: r for r in ranges}
        # Required addresses first, so a sequential pick never takes one a request named.
        for request, msg in enumerate(batch):
            if msg.required_ip is None:
                continue
            try:
                chosen = await self._required(session, l3, ranges, msg, taken)
            except ZError as exc:
                plan.failed[request] = exc
                continue
            plan.chosen[request] = chosen
            taken.add(chosen[1])
        free = {r.uuid: _range_size(r) - counts.get(r.uuid, 0) for r in ranges}
        for ip_range, _ in plan.chosen.values():
            free[ip_range.uuid] -= 1
        # Then the rest, range by range in creation order (or the range each one asked for).
        wanting: dict[str | None, list[int]] = {}
        for request, msg in enumerate(batch):
            if msg.required_ip is None:
                wanting.setdefault(msg.ip_range_uuid, []).append(request)
        for range_uuid, requests in wanting.items():
            if range_uuid is not None and range_uuid not in by_uuid:
                for request in requests:
                    plan.failed[request] = ZError(
                        SysErr.RESOURCE_NOT_FOUND,
                        f"L3 network {l3.name} has no IP range {range_uuid}",
                        ip_range_uuid=range_uuid,
                        l3_network_uuid=l3.uuid,
                    )
                continue
            candidates = [by_uuid[range_uuid]] if range_uuid is not None else ranges
            queue = list(requests)
            for ip_range in candidates:
                if not queue:
                    break
                wanted = min(len(queue), free[ip_range.uuid])
                if wanted <= 0:
                    continue
                low, high = _range_bounds(ip_range)
                addresses = await free_addresses(
                    session,
                    l3.uuid,
                    low,
                    high,
                    wanted,
                    skip=taken,
                    wrap_from=self._cursors.get(ip_range.uuid),
                )
                free[ip_range.uuid] -= len(addresses)
                for address in addresses:
                    request = queue.pop(0)
                    plan.chosen[request] = (ip_range, address)
                    taken.add(address)
            for request in queue:
                plan.failed[request] = self._no_free_ip(l3, candidates)
        return plan

    async def _required(
        self,
        session: AsyncSession,
        l3: L3NetworkVO,
        ranges: list[IpRangeVO],
        msg: AllocateIpMsg,
        taken: set[int],
    ) -> tuple[IpRangeVO, int]:
        assert msg.required_ip is not None
        address = int(parse_ipv4(msg.required_ip, "requiredIp"))
        ip = str(IPv4Address(address))

        def unavailable(why: str) -> ZError:
            return ZError(
                L3Err.IP_NOT_AVAILABLE,
                f"IP {ip} of L3 network {l3.name} ({l3.uuid}) is not available: {why}",
                ip=ip,
                l3_network_uuid=l3.uuid,
            )

        if any(r.gateway == ip for r in ranges):
            raise unavailable("it is the gateway")
        for ip_range in ranges:
            low, high = _range_bounds(ip_range)
            if low <= address <= high:
                break
        else:
            raise unavailable(f"it is in none of its IP ranges ({_describe(ranges)})")
        if msg.ip_range_uuid is not None and msg.ip_range_uuid != ip_range.uuid:
            raise unavailable(f"it is not in IP range {msg.ip_range_uuid}")
        if address in taken or await is_used(session, l3.uuid, address):
            raise unavailable("it is already in use")
        return ip_range, address

    @staticmethod
    def _no_free_ip(l3: L3NetworkVO, ranges: list[IpRangeVO]) -> ZError:
        return ZError(
            L3Err.NO_FREE_IP,
            f"no free IP in L3 network {l3.name} ({l3.uuid}) ({_describe(ranges)})",
            l3_network_uuid=l3.uuid,
            ip_range_uuids=[r.uuid for r in ranges],
        )


async def _l3_with_ranges(
    session: AsyncSession, l3_uuid: str
) -> tuple[L3NetworkVO, list[IpRangeVO], dict[str, int]]:
    """The L3, its ranges in creation order and how many addresses of each are used, in one
    statement; SYS.1003 if the L3 is gone."""
    used = (
        select(func.count())
        .where(UsedIpVO.ip_range_uuid == IpRangeVO.uuid)
        .correlate(IpRangeVO)
        .scalar_subquery()
    )
    rows = (
        await session.execute(
            select(L3NetworkVO, IpRangeVO, used)
            .outerjoin(IpRangeVO, IpRangeVO.l3_network_uuid == L3NetworkVO.uuid)
            .where(L3NetworkVO.uuid == l3_uuid)
            .order_by(IpRangeVO.create_date, IpRangeVO.uuid)
        )
    ).all()
    if not rows:
        raise ZError(SysErr.RESOURCE_NOT_FOUND, f"no L3 network with uuid {l3_uuid}", uuid=l3_uuid)
    ranges = [r for _, r, _ in rows if r is not None]
    counts = {r.uuid: int(n or 0) for _, r, n in rows if r is not None}
    return rows[0][0], ranges, counts
