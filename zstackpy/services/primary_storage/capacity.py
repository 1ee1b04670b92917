"""The capacity books of primary storage: recording what agents report, reserving and
giving back space, choosing a storage for an allocation.

Every write of a storage's books (its capacity columns and, for host-local storage, its
hosts' rows) runs in the storage's capacity queue, a queue of its own rather than the
storage's lifecycle queue: an attach waits on hosts while holding the lifecycle queue, and
a connecting host books its capacity while holding its own queue, so the books must never
wait behind either. Jobs in the capacity queue are short DB transactions that wait on
nothing else, which keeps the queue order lifecycle -> host -> capacity free of cycles.
"""

from __future__ import annotations

from functools import cached_property, partial

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from zstackpy.core.batching import QueueBatcher
from zstackpy.core.bus.message import Reply
from zstackpy.core.coalesce import CoalescedReads
from zstackpy.core.db.retry import retrying
from zstackpy.core.errors import SysErr, ZError
from zstackpy.core.service import Service, handles
from zstackpy.core.workqueue import QueueKey
from zstackpy.services.primary_storage.backends import backend_for, host_local_types
from zstackpy.services.primary_storage.cascade import HostBooksCascade
from zstackpy.services.primary_storage.messages import (
    PRIMARY_STORAGE_CAPACITY_SERVICE,
    AllocatePrimaryStorageCapacityMsg,
    AllocatePrimaryStorageCapacityReply,
    APIGetPrimaryStorageCapacityMsg,
    APIGetPrimaryStorageCapacityReply,
    ForgetHostCapacityMsg,
    ListHostCapacityMsg,
    ListHostCapacityReply,
    LocalStorageHostRefInventory,
    PrimaryStorageErr,
    PrimaryStorageState,
    PrimaryStorageStatus,
    RecordHostCapacityMsg,
    ReservePrimaryStorageCapacityMsg,
    ReturnPrimaryStorageCapacityMsg,
)
from zstackpy.services.primary_storage.models import (
    LocalStorageHostRefVO,
    PrimaryStorageClusterRefVO,
    PrimaryStorageVO,
)
from zstackpy.services.primary_storage.placement import PlacementFilter
from zstackpy.services.primary_storage.queries import capacity_sum

# A reservation that lost its candidate to a concurrent one tries the next candidate.
_LOST_RACE = frozenset({PrimaryStorageErr.INSUFFICIENT_CAPACITY, PrimaryStorageErr.WRONG_STATE})


def capacity_queue(primary_storage_uuid: str) -> QueueKey:
    return QueueKey("primary-storage-capacity", primary_storage_uuid)


def refreshed_available(old_total: int, old_available: int, total: int, available: int) -> int:
    """Available capacity after an agent reported (``total``, ``available``): what ZStack
    has reserved (old total - old available) survives the refresh; a first report (old
    total 0) takes the agent's free space as it is."""
    if old_total == 0:
        return max(0, min(available, total))
    return max(0, total - max(0, old_total - old_available))


# What a candidate read depends on: clusters, host, size, storage types, excluded storage.
CandidateAsk = tuple[tuple[str, ...], str | None, int, tuple[str, ...], tuple[str, ...]]


class PrimaryStorageCapacityService(PlacementFilter, HostBooksCascade, Service):
    """The books (messages routed by storage uuid, run in its capacity queue), the
    allocation that picks a storage, GetPrimaryStorageCapacity; also the host allocator's
    storage filter (PlacementFilter) and the HostVO cascade (HostBooksCascade)."""

    name = PRIMARY_STORAGE_CAPACITY_SERVICE

    @cached_property
    def _candidate_reads(self) -> CoalescedReads[CandidateAsk, list[str]]:
        # A burst of volume creations asks alike: one read serves them (core.coalesce).
        return CoalescedReads(self._read_candidates)

    # ----- recording what agents report -------------------------------------------------

    @handles(RecordHostCapacityMsg)
    async def record(self, msg: RecordHostCapacityMsg) -> Reply:
        key = capacity_queue(msg.primary_storage_uuid)
        await self.ctx.queues.run(key, self._record, msg)
        return Reply()

    async def _record(self, msg: RecordHostCapacityMsg) -> None:
        if not msg.reports:
            return
        async with self.ctx.db.session() as session, session.begin():
            ps = await _require(session, msg.primary_storage_uuid)
            if not backend_for(self.ctx, ps.type).is_host_local():
                # A share: every host sees the same capacity, so one report is the storage's.
                report = msg.reports[0]
                ps.available_capacity = refreshed_available(
                    ps.total_capacity,
                    ps.available_capacity,
                    report.total_capacity,
                    report.available_capacity,
                )
                ps.total_capacity = report.total_capacity
                ps.total_physical_capacity = report.total_capacity
                ps.available_physical_capacity = report.available_capacity
                return
            for report in msg.reports:
                ref = await session.get(LocalStorageHostRefVO, (ps.uuid, report.host_uuid))
                if ref is None:
                    session.add(
                        LocalStorageHostRefVO(
                            primary_storage_uuid=ps.uuid,
                            host_uuid=report.host_uuid,
                            total_capacity=report.total_capacity,
                            available_capacity=min(
                                report.available_capacity, report.total_capacity
                            ),
                            total_physical_capacity=report.total_capacity,
                            available_physical_capacity=report.available_capacity,
                        )
                    )
                    continue
                ref.available_capacity = refreshed_available(
                    ref.total_capacity,
                    ref.available_capacity,
                    report.total_capacity,
                    report.available_capacity,
                )
                ref.total_capacity = report.total_capacity
                ref.total_physical_capacity = report.total_capacity
                ref.available_physical_capacity = report.available_capacity
            await session.flush()
            await _sum_hosts(session, ps)

    @handles(ForgetHostCapacityMsg)
    async def forget(self, msg: ForgetHostCapacityMsg) -> Reply:
        key = capacity_queue(msg.primary_storage_uuid)
        await self.ctx.queues.run(key, self._forget, msg)
        return Reply()

    async def _forget(self, msg: ForgetHostCapacityMsg) -> None:
        if not msg.host_uuids:
            return
        async with self.ctx.db.session() as session, session.begin():
            ps = await session.get(PrimaryStorageVO, msg.primary_storage_uuid)
            if ps is None:
                return  # deleted meanwhile: nothing left to keep books of
            await session.execute(
                delete(LocalStorageHostRefVO).where(
                    LocalStorageHostRefVO.primary_storage_uuid == ps.uuid,
                    LocalStorageHostRefVO.host_uuid.in_(msg.host_uuids),
                )
            )
            await _sum_hosts(session, ps)

    @handles(ListHostCapacityMsg)
    async def list_hosts(self, msg: ListHostCapacityMsg) -> ListHostCapacityReply:
        stmt = select(LocalStorageHostRefVO).where(
            LocalStorageHostRefVO.primary_storage_uuid == msg.primary_storage_uuid
        )
        if msg.host_uuids:
            stmt = stmt.where(LocalStorageHostRefVO.host_uuid.in_(msg.host_uuids))
        async with self.ctx.db.session() as session:
            rows = (await session.execute(stmt.order_by(LocalStorageHostRefVO.host_uuid))).scalars()
            refs = [
                LocalStorageHostRefInventory.model_validate(r, from_attributes=True) for r in rows
            ]
        return ListHostCapacityReply(refs=refs)

    # ----- reservations -----------------------------------------------------------------

    @handles(ReservePrimaryStorageCapacityMsg)
    async def reserve(
        self, msg: ReservePrimaryStorageCapacityMsg
    ) -> AllocatePrimaryStorageCapacityReply:
        return await self._reservations.submit(capacity_queue(msg.primary_storage_uuid), msg)

    @cached_property
    def _reservations(
        self,
    ) -> QueueBatcher[ReservePrimaryStorageCapacityMsg, AllocatePrimaryStorageCapacityReply]:
        # A burst of volume creations books one storage: one transaction serves them all.
        return QueueBatcher(self.ctx.queues, self._reserve_many_retrying)

    async def _reserve_many_retrying(
        self, asks: list[ReservePrimaryStorageCapacityMsg]
    ) -> list[AllocatePrimaryStorageCapacityReply | ZError]:
        return await retrying(partial(self._reserve_many, asks), "reserving storage capacity")

    async def _reserve_many(
        self, asks: list[ReservePrimaryStorageCapacityMsg]
    ) -> list[AllocatePrimaryStorageCapacityReply | ZError]:
        """Reservations of one storage in arrival order, in one transaction: PS.1002 for
        all when the storage is not Enabled and Connected; PS.1003 for each that does not
        fit in what the earlier ones left."""
        async with self.ctx.db.session() as session, session.begin():
            ps = await _require(session, asks[0].primary_storage_uuid)
            if ps.state != PrimaryStorageState.ENABLED or ps.status != (
                PrimaryStorageStatus.CONNECTED
            ):
                return [_not_usable(ps) for _ in asks]
            outcomes: list[AllocatePrimaryStorageCapacityReply | ZError] = []
            for msg in asks:
                try:
                    ref = await self._host_books(session, ps, msg.host_uuid)
                except ZError as exc:
                    outcomes.append(exc)
                    continue
                short = next(
                    (b for b in (ref, ps) if b is not None and b.available_capacity < msg.size),
                    None,
                )
                if short is not None:
                    outcomes.append(_insufficient(ps, msg, short, short is ref))
                    continue
                for books in (ref, ps):
                    if books is not None:
                        books.available_capacity -= msg.size
                outcomes.append(
                    AllocatePrimaryStorageCapacityReply(
                        primary_storage_uuid=ps.uuid,
                        storage_type=ps.type,
                        host_uuid=msg.host_uuid if ref is not None else None,
                        size=msg.size,
                    )
                )
            return outcomes

    @handles(ReturnPrimaryStorageCapacityMsg)
    async def give_back(self, msg: ReturnPrimaryStorageCapacityMsg) -> Reply:
        key = capacity_queue(msg.primary_storage_uuid)
        await self.ctx.queues.run(
            key, retrying, partial(self._give_back, msg), "returning storage capacity"
        )
        return Reply()

    async def _give_back(self, msg: ReturnPrimaryStorageCapacityMsg) -> None:
        async with self.ctx.db.session() as session, session.begin():
            ps = await session.get(PrimaryStorageVO, msg.primary_storage_uuid)
            if ps is None:
                return  # the storage is gone, and its books with it
            ref = None
            if msg.host_uuid is not None and backend_for(self.ctx, ps.type).is_host_local():
                # A host removed meanwhile took its books along: only the storage's remain.
                ref = await session.get(LocalStorageHostRefVO, (ps.uuid, msg.host_uuid))
            for books in (ref, ps):
                if books is not None:
                    books.available_capacity = min(
                        books.total_capacity, books.available_capacity + msg.size
                    )

    async def _host_books(
        self, session: AsyncSession, ps: PrimaryStorageVO, host_uuid: str | None
    ) -> LocalStorageHostRefVO | None:
        """The host's books of a host-local storage (None for shared storage)."""
        if not backend_for(self.ctx, ps.type).is_host_local():
            return None
        ref = None
        if host_uuid is not None:
            ref = await session.get(LocalStorageHostRefVO, (ps.uuid, host_uuid))
        if ref is None:
            raise ZError(
                PrimaryStorageErr.INSUFFICIENT_CAPACITY,
                f"primary storage {ps.uuid} is host-local: it has no disk on host {host_uuid}",
                uuid=ps.uuid,
                host_uuid=host_uuid,
            )
        return ref

    # ----- allocation -------------------------------------------------------------------

    @handles(AllocatePrimaryStorageCapacityMsg)
    async def allocate(
        self, msg: AllocatePrimaryStorageCapacityMsg
    ) -> AllocatePrimaryStorageCapacityReply:
        if msg.primary_storage_uuid is not None:
            # This node owns that storage (the message is routed by it): reserve in place.
            return await self.reserve(
                ReservePrimaryStorageCapacityMsg(
                    primary_storage_uuid=msg.primary_storage_uuid,
                    host_uuid=msg.host_uuid,
                    size=msg.size,
                )
            )
        ask: CandidateAsk = (
            tuple(msg.cluster_uuids),
            msg.host_uuid,
            msg.size,
            tuple(msg.storage_types),
            tuple(msg.excluded_primary_storage_uuids),
        )
        for uuid in await self._candidate_reads.read(ask):
            reply = await self.ctx.bus.call(
                ReservePrimaryStorageCapacityMsg(
                    primary_storage_uuid=uuid, host_uuid=msg.host_uuid, size=msg.size
                )
            )
            if isinstance(reply, AllocatePrimaryStorageCapacityReply) and reply.success:
                return reply
            if reply.error is None or reply.error.code not in _LOST_RACE:
                reply.raise_if_error()
        raise ZError(
            PrimaryStorageErr.NO_CANDIDATE,
            f"no Enabled, Connected primary storage attached to clusters "
            f"{', '.join(msg.cluster_uuids) or '(none given)'} has {msg.size} bytes available"
            + (f" on host {msg.host_uuid}" if msg.host_uuid else ""),
            cluster_uuids=msg.cluster_uuids,
            host_uuid=msg.host_uuid,
            size=msg.size,
        )

    async def _read_candidates(self, ask: CandidateAsk) -> list[str]:
        """Storage that fits now, most available first (a reservation may still lose)."""
        cluster_uuids, host_uuid, size, storage_types, excluded = ask
        if not cluster_uuids:
            return []
        local = host_local_types(self.ctx)
        stmt = (
            select(PrimaryStorageVO.uuid, PrimaryStorageVO.type)
            .join(
                PrimaryStorageClusterRefVO,
                PrimaryStorageClusterRefVO.primary_storage_uuid == PrimaryStorageVO.uuid,
            )
            .where(
                PrimaryStorageClusterRefVO.cluster_uuid.in_(cluster_uuids),
                PrimaryStorageVO.state == PrimaryStorageState.ENABLED,
                PrimaryStorageVO.status == PrimaryStorageStatus.CONNECTED,
                PrimaryStorageVO.available_capacity >= size,
            )
            .distinct()
            .order_by(PrimaryStorageVO.available_capacity.desc(), PrimaryStorageVO.uuid)
        )
        if storage_types:
            stmt = stmt.where(PrimaryStorageVO.type.in_(storage_types))
        if excluded:
            stmt = stmt.where(PrimaryStorageVO.uuid.not_in(excluded))
        async with self.ctx.db.read_session() as session:
            rows = (await session.execute(stmt)).all()
            fitting_hosts: set[str] = set()
            # Only host-local storage keeps books per host: none among the rows, no read.
            if host_uuid is not None and any(kind in local for _, kind in rows):
                refs = await session.execute(
                    select(LocalStorageHostRefVO.primary_storage_uuid).where(
                        LocalStorageHostRefVO.host_uuid == host_uuid,
                        LocalStorageHostRefVO.available_capacity >= size,
                    )
                )
                fitting_hosts = set(refs.scalars())
        return [uuid for uuid, kind in rows if kind not in local or uuid in fitting_hosts]

    # ----- GetPrimaryStorageCapacity ----------------------------------------------------

    @handles(APIGetPrimaryStorageCapacityMsg)
    async def get_capacity(
        self, msg: APIGetPrimaryStorageCapacityMsg
    ) -> APIGetPrimaryStorageCapacityReply:
        stmt = capacity_sum(msg, msg.require_auth())
        async with self.ctx.db.session() as session:
            total, available, total_physical, available_physical = (
                await session.execute(stmt)
            ).one()
        return APIGetPrimaryStorageCapacityReply(
            total_capacity=int(total),
            available_capacity=int(available),
            total_physical_capacity=int(total_physical),
            available_physical_capacity=int(available_physical),
        )


def _not_usable(ps: PrimaryStorageVO) -> ZError:
    return ZError(
        PrimaryStorageErr.WRONG_STATE,
        f"primary storage {ps.uuid} is {ps.state} and {ps.status}: it takes new volumes "
        "only when Enabled and Connected",
        uuid=ps.uuid,
        state=ps.state,
        status=ps.status,
    )


def _insufficient(
    ps: PrimaryStorageVO,
    msg: ReservePrimaryStorageCapacityMsg,
    books: PrimaryStorageVO | LocalStorageHostRefVO,
    on_host: bool,
) -> ZError:
    return ZError(
        PrimaryStorageErr.INSUFFICIENT_CAPACITY,
        f"primary storage {ps.uuid} has {books.available_capacity} bytes "
        f"available{_on_host(msg.host_uuid if on_host else None)}, {msg.size} requested",
        uuid=ps.uuid,
        host_uuid=msg.host_uuid,
        available=books.available_capacity,
        requested=msg.size,
    )


async def _require(session: AsyncSession, uuid: str) -> PrimaryStorageVO:
    ps = await session.get(PrimaryStorageVO, uuid)
    if ps is None:
        raise ZError(SysErr.RESOURCE_NOT_FOUND, f"no primary storage with uuid {uuid}", uuid=uuid)
    return ps


async def _sum_hosts(session: AsyncSession, ps: PrimaryStorageVO) -> None:
    """A host-local storage's totals are the sums of its hosts' books."""
    ref = LocalStorageHostRefVO
    sums = (
        await session.execute(
            select(
                func.coalesce(func.sum(ref.total_capacity), 0),
                func.coalesce(func.sum(ref.available_capacity), 0),
                func.coalesce(func.sum(ref.total_physical_capacity), 0),
                func.coalesce(func.sum(ref.available_physical_capacity), 0),
            ).where(ref.primary_storage_uuid == ps.uuid)
        )
    ).one()
    (
        ps.total_capacity,
        ps.available_capacity,
        ps.total_physical_capacity,
        ps.available_physical_capacity,
    ) = (int(v) for v in sums)


def _on_host(host_uuid: str | None) -> str:
    return f" on host {host_uuid}" if host_uuid else ""
