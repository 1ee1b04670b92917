"""Heartbeats in the database, eviction of silent nodes, and the ring they feed.

Every node writes its heartbeat with the *database* clock every ``node.heartbeatInterval``
seconds, so the nodes' own clocks never matter. A node whose heartbeat is older than
``interval * node.heartbeatMissCount`` is evicted: its row is deleted, it leaves every ring,
calls in flight to it fail at once, and the takeover hooks run. A node that finds its own
row gone has been evicted by the others and must stop serving (it is fenced). The takeover
hooks a ring change calls for run in a task of their own (``takeovers.py``), never in the
heartbeat's rounds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from zstackpy.core.bus import CloudBus
from zstackpy.core.config import GlobalConfigs
from zstackpy.core.db import Database, ManagementNodeVO, db_epoch
from zstackpy.core.membership import (
    ManagementNodeJoinedEvent,
    ManagementNodeLeftEvent,
    NodeTakeover,
    RingChange,
)
from zstackpy.core.ring import Ring
from zstackpy.core.takeovers import TakeoverRunner

log = logging.getLogger(__name__)

# The shortest pause between two checks, as a share of the interval: keeps a check that
# races a fresh heartbeat from spinning.
_MIN_PAUSE_SHARE = 0.1
# How long stop() lets a heartbeat round in progress finish before cancelling it.
_STOP_GRACE_S = 10.0
# A beat this many intervals after the previous one is logged with where its time went.
_LATE_BEAT_INTERVALS = 2.0


@dataclass(frozen=True, slots=True)
class NodeRow:
    uuid: str
    heartbeat: float


class Heartbeat:
    def __init__(
        self,
        *,
        node_uuid: str,
        host_name: str,
        port: int,
        db: Database,
        bus: CloudBus,
        ring: Ring,
        configs: GlobalConfigs,
        takeovers: Callable[[], Iterable[NodeTakeover]],
        on_fenced: Callable[[], Awaitable[None]],
    ) -> None:
        self.node_uuid = node_uuid
        self.host_name = host_name
        self.port = port
        self.db = db
        self.bus = bus
        self.ring = ring
        self.configs = configs
        self._takeovers = TakeoverRunner(takeovers)
        self._on_fenced = on_fenced
        self._task: asyncio.Task[None] | None = None
        # Set when the interval changes, so the loop re-plans at once instead of sleeping
        # out the old interval while the others already evict on the new window.
        self._replan = asyncio.Event()
        self._stopping = False
        self._unwatch: list[Callable[[], None]] = []
        # Loop time since which our rounds reach the database again, after a round that
        # failed (None while they fail). Until a window has passed since then, nobody is
        # evicted: after a database outage every heartbeat is old, and the others need one
        # window to write theirs again (they were as cut off as we were).
        self._db_back_since: float | None = float("-inf")
        self._db_lost_at = 0.0  # loop time of the first failed round of an outage
        # This process's monotonic clock at that write: its age needs no database read.
        self.last_beat_monotonic: float | None = None
        self.is_fenced = False
        self._checkout_s = 0.0  # how long the last beat waited for its connection

    @property
    def interval(self) -> float:
        return self.configs.get_float("node", "heartbeatInterval")

    @property
    def window(self) -> float:
        return self.interval * self.configs.get_int("node", "heartbeatMissCount")

    async def start(self) -> None:
        """Write our row, learn the live nodes, tell the others we joined, start beating."""
        for name in ("heartbeatInterval", "heartbeatMissCount"):
            self._unwatch.append(self.configs.watch("node", name, self._config_changed))
        await self.bus.subscribe(ManagementNodeJoinedEvent, self._on_joined)
        await self.bus.subscribe(ManagementNodeLeftEvent, self._on_left)
        self._takeovers.start()
        async with self.db.session() as session, session.begin():
            await session.execute(
                insert(ManagementNodeVO).values(
                    uuid=self.node_uuid,
                    host_name=self.host_name,
                    port=self.port,
                    state="running",
                    heartbeat=db_epoch(),
                    joined_at=db_epoch(),
                )
            )
        self.ring.add(self.node_uuid)
        await self._check()
        await self.bus.publish(
            ManagementNodeJoinedEvent(
                node_uuid=self.node_uuid, host_name=self.host_name, port=self.port
            )
        )
        self._task = asyncio.create_task(self._loop(), name="heartbeat")

    async def stop(self, *, leave: bool = True) -> None:
        """Stop beating; with ``leave``, delete our row and tell the others (graceful)."""
        for unwatch in self._unwatch:
            unwatch()
        if self._task is not None:
            # Ask the loop to finish its round rather than cancel it: a cancelled database
            # call can leave its connection inside a write transaction, and SQLite would
            # then refuse our goodbye (database is locked).
            self._stopping = True
            self._replan.set()
            try:
                await asyncio.wait_for(asyncio.shield(self._task), _STOP_GRACE_S)
            except TimeoutError:
                self._task.cancel()
                await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        await self._takeovers.stop()
        if leave and not self.is_fenced:
            async with self.db.session() as session, session.begin():
                await session.execute(
                    delete(ManagementNodeVO).where(ManagementNodeVO.uuid == self.node_uuid)
                )
            try:
                await self.bus.publish(
                    ManagementNodeLeftEvent(node_uuid=self.node_uuid, reason="stopped")
                )
            except Exception:
                log.warning("could not announce that this node leaves", exc_info=True)

    def _config_changed(self, old: object, new: object) -> None:
        self._replan.set()

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        last_beat_at = float("-inf")
        while not self._stopping:
            try:
                if loop.time() >= last_beat_at + self.interval:
                    began = loop.time()
                    if not await self._beat():
                        await self._fence()
                        return
                    self._log_if_late(last_beat_at, began, loop.time())
                    # The next beat is due an interval after this one began, not after its
                    # write ended: a write slowed by load must not space the beats out.
                    last_beat_at = began
                    if self._db_back_since is None:
                        self._db_back_since = last_beat_at
                        log.warning("the database answers again; evictions wait one window")
                if self._stopping:
                    return
                soonest_expiry = await self._check()
                if self._stopping:
                    return
                pause = min(last_beat_at + self.interval - loop.time(), soonest_expiry)
                await self._pause(max(pause, self.interval * _MIN_PAUSE_SHARE))
            except asyncio.CancelledError:
                raise
            except Exception:
                # The database may be briefly unreachable; keep trying at the same pace.
                log.exception("heartbeat round failed")
                if self._db_back_since is not None:
                    self._db_lost_at = loop.time()
                self._db_back_since = None
                last_beat_at = float("-inf")  # beat first when it answers again
                await self._pause(self.interval)

    async def _pause(self, seconds: float) -> None:
        """Sleep, but wake early when the interval changes or stop() is called."""
        if self._stopping:
            return
        self._replan.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._replan.wait(), seconds)

    def _log_if_late(self, previous: float, began: float, wrote: float) -> None:
        """A beat long after the previous one says where the time went: the round began
        late (the event loop was busy, or the last check or pause ran long) or its write
        was slow (waiting for a pooled connection, or the database)."""
        gap = wrote - previous
        if previous == float("-inf") or gap < _LATE_BEAT_INTERVALS * self.interval:
            return  # on time, or the first beat of the node or after a failed round
        log.warning(
            "heartbeat written %.1f s after the previous one (interval %g s, eviction after "
            "%g s): it began %.1f s late, its connection took %.1f s, its write %.1f s",
            gap,
            self.interval,
            self.window,
            began - previous - self.interval,
            self._checkout_s,
            wrote - began - self._checkout_s,
        )

    async def _beat(self) -> bool:
        """Write our heartbeat; False when our row is gone (we were evicted)."""
        async with self.db.heartbeat_session() as session, session.begin():
            started = time.monotonic()
            _ = await session.connection()  # the pool's wait, timed apart from the write
            self._checkout_s = time.monotonic() - started
            # No UPDATE ... RETURNING: MariaDB lacks it. FOUND_ROWS makes rowcount honest.
            result = await session.execute(
                update(ManagementNodeVO)
                .where(ManagementNodeVO.uuid == self.node_uuid)
                .values(heartbeat=db_epoch())
            )
            if result.rowcount == 0:  # type: ignore[attr-defined]  # CursorResult at runtime
                return False
        self.last_beat_monotonic = time.monotonic()
        return True

    async def _fence(self) -> None:
        self.is_fenced = True
        log.error(
            "management node %s: its heartbeat row is gone, the other nodes evicted it; "
            "it stops serving",
            self.node_uuid,
        )
        # No more takeovers either: the others own everything now.
        await self._takeovers.stop()
        await self._on_fenced()

    async def _check(self) -> float:
        """Evict silent nodes, adopt live ones missing from our ring.

        Returns seconds until the next live node would expire if it stopped beating.
        """
        async with self.db.heartbeat_session() as session, session.begin():
            # The database's clock with the rows: one round trip, not two.
            read = (
                await session.execute(
                    select(ManagementNodeVO.uuid, ManagementNodeVO.heartbeat, db_epoch())
                )
            ).all()
            rows = [NodeRow(uuid, hb) for uuid, hb, _ in read]
            now = read[0][2] if read else await _db_now(session)
            deadline = now - self.window
            stale = [r for r in rows if r.heartbeat < deadline and r.uuid != self.node_uuid]
            grace = self._eviction_grace()
            if stale and grace > 0:
                log.info(
                    "not evicting %s yet: the database was unreachable", [r.uuid for r in stale]
                )
                stale = []
            evicted = [r for r in stale if await self._delete_if_silent(session, r, deadline)]
        gone = {r.uuid for r in evicted}
        live = {r.uuid for r in rows if r.uuid not in gone}
        for row in evicted:
            log.warning(
                "management node %s missed its heartbeats (the last %.1f s ago, window %g s): "
                "evicted",
                row.uuid,
                now - row.heartbeat,
                self.window,
            )
            self._leave(row.uuid)
            await self.bus.publish(ManagementNodeLeftEvent(node_uuid=row.uuid, reason="evicted"))
        for node in self.ring.nodes - live - {self.node_uuid}:
            self._leave(node)
        joined = {n for n in live - {self.node_uuid} if self.ring.add(n)}
        if joined:
            self._run_takeovers(joined=frozenset(joined), left=frozenset())
        others = [r.heartbeat for r in rows if r.uuid in live and r.uuid != self.node_uuid]
        soonest = min((hb + self.window - now for hb in others), default=self.interval)
        return max(soonest, grace) if grace > 0 else soonest

    async def _delete_if_silent(self, session: AsyncSession, row: NodeRow, deadline: float) -> bool:
        """Delete a silent node's row, with the heartbeat condition again: True only when
        the row went. A node that beat since our read keeps its row and stays; it used to
        be announced evicted anyway, its jobs failed and its resources taken over while it
        went on serving them."""
        result = await session.execute(
            delete(ManagementNodeVO).where(
                ManagementNodeVO.uuid == row.uuid, ManagementNodeVO.heartbeat < deadline
            )
        )
        if result.rowcount:  # type: ignore[attr-defined]  # CursorResult at runtime
            return True
        log.info("management node %s beat again just in time: not evicted", row.uuid)
        return False

    def database_unreachable_for(self) -> float:
        """Seconds since this node's rounds stopped reaching the database (0 when they do)."""
        if self._db_back_since is not None:
            return 0.0
        return asyncio.get_running_loop().time() - self._db_lost_at

    def _eviction_grace(self) -> float:
        """Seconds until this node may evict again after the database came back."""
        if self._db_back_since is None:
            return self.window
        return self._db_back_since + self.window - asyncio.get_running_loop().time()

    def _leave(self, node: str) -> None:
        if node == self.node_uuid or not self.ring.remove(node):
            return
        failed = self.bus.node_left(node)
        if failed:
            log.warning("%d calls in flight to management node %s failed", failed, node)
        self._run_takeovers(joined=frozenset(), left=frozenset({node}))

    def _run_takeovers(self, *, joined: frozenset[str], left: frozenset[str]) -> None:
        change = RingChange(this_node=self.node_uuid, joined=joined, left=left, ring=self.ring)
        self._takeovers.submit(change)

    async def _on_joined(self, event: ManagementNodeJoinedEvent) -> None:
        if event.node_uuid != self.node_uuid and self.ring.add(event.node_uuid):
            log.info("management node %s joined", event.node_uuid)
            self._run_takeovers(joined=frozenset({event.node_uuid}), left=frozenset())

    async def _on_left(self, event: ManagementNodeLeftEvent) -> None:
        if event.node_uuid == self.node_uuid:
            return  # an eviction of us is noticed on our own row, not from hearsay
        log.info("management node %s left (%s)", event.node_uuid, event.reason or "unknown")
        self._leave(event.node_uuid)


async def _db_now(session: AsyncSession) -> float:
    now: float = (await session.execute(select(db_epoch()))).scalar_one()
    return now
