"""The host allocator's primary storage filter: a VM may go only where its disks fit."""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, NamedTuple

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from zstackpy.core.coalesce import CoalescedReads
from zstackpy.core.errors import ZError
from zstackpy.services.host.messages import AllocateHostMsg, HostCandidate, HostErr
from zstackpy.services.primary_storage.backends import host_local_types
from zstackpy.services.primary_storage.messages import PrimaryStorageState, PrimaryStorageStatus
from zstackpy.services.primary_storage.models import (
    LocalStorageHostRefVO,
    PrimaryStorageClusterRefVO,
    PrimaryStorageVO,
)

if TYPE_CHECKING:
    from zstackpy.core.context import NodeContext


class PlacementAsk(NamedTuple):
    clusters: tuple[str, ...]
    size: int
    primary_storage_uuids: tuple[str, ...]  # only these count, when given
    host_uuids: tuple[str, ...]  # the candidates (their own disks, for host-local storage)


# Clusters with a fitting shared storage; host-local storages by cluster; fitting
# (storage, host) disks. Shared by the callers of one read: read-only.
Fits = tuple[set[str], dict[str, set[str]], set[tuple[str, str]]]


class PlacementFilter:
    """HostAllocatorFilter, mixed into the capacity service (which owns ``ctx``).

    Keeps the hosts whose cluster has an attached, Enabled, Connected primary storage with
    ``request.disk_size`` bytes available: on the host's own disk for host-local storage,
    on the storage for shared storage; only ``request.primary_storage_uuids`` count when
    given. A request with no disk (``disk_size`` 0) and no named storage passes every host:
    it needs no primary storage. Reads only: the space is reserved later, per volume, with
    AllocatePrimaryStorageCapacityMsg.
    """

    ctx: NodeContext

    async def filter_hosts(
        self, request: AllocateHostMsg, candidates: list[HostCandidate]
    ) -> list[HostCandidate]:
        if not candidates or (request.disk_size == 0 and not request.primary_storage_uuids):
            return candidates
        size = request.disk_size
        clusters = sorted({c.cluster_uuid for c in candidates})
        ask = PlacementAsk(
            tuple(clusters),
            size,
            tuple(request.primary_storage_uuids or ()),
            tuple(sorted(c.uuid for c in candidates)),
        )
        fits = await self._placement_reads.read(ask)
        shared_clusters, local_by_cluster, fitting_disks = fits
        kept = [
            c
            for c in candidates
            if c.cluster_uuid in shared_clusters
            or any((p, c.uuid) in fitting_disks for p in local_by_cluster.get(c.cluster_uuid, ()))
        ]
        if not kept:
            named = (
                f" among {', '.join(request.primary_storage_uuids)}"
                if request.primary_storage_uuids
                else ""
            )
            raise ZError(
                HostErr.NO_AVAILABLE_HOST,
                f"no Enabled, Connected primary storage{named} attached to clusters "
                f"{', '.join(clusters)} has {size} bytes available for the VM's disks",
                filter="primary-storage",
                cluster_uuids=clusters,
                disk_size=size,
                primary_storage_uuids=request.primary_storage_uuids,
            )
        return kept

    @cached_property
    def _placement_reads(self) -> CoalescedReads[PlacementAsk, Fits]:
        # Every VM of a burst asks alike: one read serves them (core.coalesce).
        return CoalescedReads(self._read_fits)

    async def _read_fits(self, ask: PlacementAsk) -> Fits:
        ps, ref = PrimaryStorageVO, PrimaryStorageClusterRefVO
        stmt = (
            select(ref.cluster_uuid, ps.uuid, ps.type)
            .join(ps, ps.uuid == ref.primary_storage_uuid)
            .where(
                ref.cluster_uuid.in_(ask.clusters),
                ps.state == PrimaryStorageState.ENABLED,
                ps.status == PrimaryStorageStatus.CONNECTED,
                ps.available_capacity >= ask.size,
            )
        )
        if ask.primary_storage_uuids:
            stmt = stmt.where(ps.uuid.in_(ask.primary_storage_uuids))
        local = host_local_types(self.ctx)

        async def read(session: AsyncSession) -> Fits:
            rows = (await session.execute(stmt)).all()
            shared_clusters = {cluster for cluster, _, kind in rows if kind not in local}
            local_by_cluster: dict[str, set[str]] = {}
            for cluster, uuid, kind in rows:
                if kind in local:
                    local_by_cluster.setdefault(cluster, set()).add(uuid)
            fitting_disks: set[tuple[str, str]] = set()
            if local_by_cluster:
                disks = await session.execute(
                    select(
                        LocalStorageHostRefVO.primary_storage_uuid, LocalStorageHostRefVO.host_uuid
                    ).where(
                        LocalStorageHostRefVO.host_uuid.in_(ask.host_uuids),
                        LocalStorageHostRefVO.primary_storage_uuid.in_(
                            set().union(*local_by_cluster.values())
                        ),
                        LocalStorageHostRefVO.available_capacity >= ask.size,
                    )
                )
                fitting_disks = {(p, h) for p, h in disks}
            return shared_clusters, local_by_cluster, fitting_disks

        return await self.ctx.db.read(read)
