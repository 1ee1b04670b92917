"""The flows of ``flows/host-allocate.yaml``: narrow the hosts down, order them, reserve.

Every filter keeps the candidates' order and fails the chain with HOST.1101 naming itself
when nothing is left, so a caller learns which condition no host met. Only
``reserve-capacity`` changes anything, and its rollback gives the capacity back, so a
step a plugin appends after it (``extend: host-allocate``) can fail safely.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select

from zstackpy.core.coalesce import CoalescedReads
from zstackpy.core.context import NodeContext
from zstackpy.core.errors import ZError
from zstackpy.core.flow import Flow
from zstackpy.services.host.allocator.pages import CandidatePages
from zstackpy.services.host.extensions import HostAllocatorFilter, HostAllocatorStrategy
from zstackpy.services.host.messages import (
    AllocateHostMsg,
    HostCandidate,
    HostErr,
    HostState,
    HostStatus,
    ReserveHostCapacityMsg,
    ReturnHostCapacityMsg,
)
from zstackpy.services.host.models import HostVO
from zstackpy.services.tag.models import SystemTagVO

# A reserve refused for these reasons means "try the next host", not "fail".
_RACE_LOST = {HostErr.CAPACITY_EXHAUSTED.value, HostErr.WRONG_STATE.value}


@dataclass
class AllocateHostCtx:
    node: NodeContext
    request: AllocateHostMsg
    strategy: HostAllocatorStrategy
    candidates: list[HostCandidate] = field(default_factory=list)
    chosen: HostCandidate | None = None  # set once reserved; rollback returns its capacity
    # The allocator service's shared candidate reads (None: read alone).
    candidate_reads: CoalescedReads[CandidateKey, list[HostCandidate]] | None = None
    # A paginated placement: the page to read (candidate_reads is not used then) and the
    # uuids it held before any filter, for the next page's start.
    pages: CandidatePages | None = None
    page_uuids: list[str] = field(default_factory=list)


def no_host(step: str, reason: str, **details: Any) -> ZError:
    return ZError(HostErr.NO_AVAILABLE_HOST, f"no host available: {reason}", filter=step, **details)


# What the candidate read depends on: zone, clusters, host, hypervisor, excluded hosts.
CandidateKey = tuple[str | None, tuple[str, ...], str | None, str | None, tuple[str, ...]]


def candidate_key(request: AllocateHostMsg) -> CandidateKey:
    return (
        request.zone_uuid,
        tuple(request.cluster_uuids),
        request.host_uuid,
        request.hypervisor_type,
        tuple(request.excluded_host_uuids),
    )


async def read_candidates(
    node: NodeContext, key: CandidateKey, pages: CandidatePages | None = None
) -> list[HostCandidate]:
    """Enabled and Connected hosts matching ``key``, by uuid (``pages``: only the next
    page)."""
    zone_uuid, cluster_uuids, host_uuid, hypervisor_type, excluded = key
    # Columns, not entities: a zone's hosts are read for every VM created.
    stmt = select(
        HostVO.uuid,
        HostVO.name,
        HostVO.zone_uuid,
        HostVO.cluster_uuid,
        HostVO.management_ip,
        HostVO.hypervisor_type,
        HostVO.available_cpu_capacity,
        HostVO.available_memory_capacity,
    ).where(HostVO.state == HostState.ENABLED, HostVO.status == HostStatus.CONNECTED)
    if zone_uuid is not None:
        stmt = stmt.where(HostVO.zone_uuid == zone_uuid)
    if cluster_uuids:
        stmt = stmt.where(HostVO.cluster_uuid.in_(cluster_uuids))
    if host_uuid is not None:
        stmt = stmt.where(HostVO.uuid == host_uuid)
    if hypervisor_type is not None:
        stmt = stmt.where(HostVO.hypervisor_type == hypervisor_type)
    if excluded:
        stmt = stmt.where(HostVO.uuid.not_in(excluded))
    async with node.db.read_session() as session:
        if pages is None:
            rows = list((await session.execute(stmt.order_by(HostVO.uuid))).all())
        else:
            rows = await pages.next_page(session, stmt)
    # The rows are the database's own: validating them again would only cost time.
    return [
        HostCandidate.model_construct(
            uuid=r.uuid,
            name=r.name,
            zone_uuid=r.zone_uuid,
            cluster_uuid=r.cluster_uuid,
            management_ip=r.management_ip,
            hypervisor_type=r.hypervisor_type,
            available_cpu=r.available_cpu_capacity,
            available_memory=r.available_memory_capacity,
        )
        for r in rows
    ]


class CandidateHosts(Flow[AllocateHostCtx]):
    """Enabled and Connected hosts in the zone, clusters or host asked for, of the
    hypervisor type asked for, minus the excluded ones. Concurrent allocations asking the
    same share one read (``candidate_reads``), which started after each of them asked."""

    async def run(self, ctx: AllocateHostCtx) -> None:
        request = ctx.request
        key = candidate_key(request)
        if ctx.pages is not None:
            ctx.candidates = await read_candidates(ctx.node, key, ctx.pages)
            ctx.page_uuids = [h.uuid for h in ctx.candidates]
        elif ctx.candidate_reads is not None:
            ctx.candidates = list(await ctx.candidate_reads.read(key))
        else:
            ctx.candidates = await read_candidates(ctx.node, key)
        if not ctx.candidates:
            raise no_host(
                "candidate-hosts",
                "no Enabled and Connected host matches the zone, clusters, host and "
                "hypervisor asked for",
                zoneUuid=request.zone_uuid,
                clusterUuids=request.cluster_uuids,
                hostUuid=request.host_uuid,
            )


class FilterByCapacity(Flow[AllocateHostCtx]):
    async def run(self, ctx: AllocateHostCtx) -> None:
        cpu, memory = ctx.request.cpu_num, ctx.request.memory_size
        ctx.candidates = [
            h for h in ctx.candidates if h.available_cpu >= cpu and h.available_memory >= memory
        ]
        if not ctx.candidates:
            raise no_host(
                "filter-by-capacity",
                f"no host has {cpu} vCPUs and {memory} bytes of memory free",
                cpuNum=cpu,
                memorySize=memory,
            )


class FilterByHostTags(Flow[AllocateHostCtx]):
    """Hosts carrying every system tag in ``request.host_tags``."""

    async def run(self, ctx: AllocateHostCtx) -> None:
        wanted = sorted(set(ctx.request.host_tags))
        if not wanted:
            return
        uuids = [h.uuid for h in ctx.candidates]
        stmt = (
            select(SystemTagVO.resource_uuid)
            .where(SystemTagVO.resource_uuid.in_(uuids), SystemTagVO.tag.in_(wanted))
            .group_by(SystemTagVO.resource_uuid)
            .having(func.count(func.distinct(SystemTagVO.tag)) == len(wanted))
        )
        async with ctx.node.db.session() as session:
            tagged = set((await session.execute(stmt)).scalars())
        ctx.candidates = [h for h in ctx.candidates if h.uuid in tagged]
        if not ctx.candidates:
            raise no_host(
                "filter-by-host-tags", f"no host carries the tags {wanted}", hostTags=wanted
            )


class RunAllocatorFilters(Flow[AllocateHostCtx]):
    """Every HostAllocatorFilter other plugins registered (storage, networks, images)."""

    async def run(self, ctx: AllocateHostCtx) -> None:
        for allocator_filter in ctx.node.plugins.extensions(HostAllocatorFilter):
            kept = await allocator_filter.filter_hosts(ctx.request, list(ctx.candidates))
            allowed = {h.uuid for h in ctx.candidates}
            # A filter narrows; it cannot bring back a host an earlier step removed.
            ctx.candidates = [h for h in kept if h.uuid in allowed]
            if not ctx.candidates:
                name = type(allocator_filter).__name__
                raise no_host(name, f"{name} left no host")


class SortByStrategy(Flow[AllocateHostCtx]):
    async def run(self, ctx: AllocateHostCtx) -> None:
        ctx.candidates = await ctx.strategy.sort_hosts(ctx.request, list(ctx.candidates))


class ReserveCapacity(Flow[AllocateHostCtx]):
    """Reserve on the first candidate that still has room, in its queue on its owner node;
    a host that lost its room (or its Connected status) since selection is skipped.
    Dry runs reserve nothing."""

    async def run(self, ctx: AllocateHostCtx) -> None:
        request = ctx.request
        if request.dry_run:
            return
        lost: list[str] = []
        for host in ctx.candidates:
            reply = await ctx.node.bus.call(
                ReserveHostCapacityMsg(
                    host_uuid=host.uuid, cpu_num=request.cpu_num, memory_size=request.memory_size
                )
            )
            if reply.success:
                ctx.chosen = host
                return
            if reply.error is None or reply.error.code not in _RACE_LOST:
                reply.raise_if_error()
            lost.append(host.uuid)
        raise ZError(
            HostErr.CAPACITY_EXHAUSTED,
            "every candidate host lost its free capacity to concurrent allocations",
            hostUuids=lost,
            cpuNum=request.cpu_num,
            memorySize=request.memory_size,
        )

    async def rollback(self, ctx: AllocateHostCtx) -> None:
        if ctx.chosen is None:
            return
        reply = await ctx.node.bus.call(
            ReturnHostCapacityMsg(
                host_uuid=ctx.chosen.uuid,
                cpu_num=ctx.request.cpu_num,
                memory_size=ctx.request.memory_size,
            )
        )
        reply.raise_if_error()
        ctx.chosen = None


ALLOCATOR_FLOWS: dict[str, type[Flow[AllocateHostCtx]]] = {
    "candidate-hosts": CandidateHosts,
    "filter-by-capacity": FilterByCapacity,
    "filter-by-host-tags": FilterByHostTags,
    "run-allocator-filters": RunAllocatorFilters,
    "sort-by-strategy": SortByStrategy,
    "reserve-capacity": ReserveCapacity,
}
