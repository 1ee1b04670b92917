"""The ping tracker: each node pings the Connected and Disconnected hosts it owns.

One background task per node runs a round every ``host ping.interval`` s: it reads the
hosts, keeps those the ring gives this node, and pings them, ``host ping.parallelismDegree``
at a time, their starts spread evenly over 80% of the interval (a steady trickle, not a
burst per round). A Connected host whose ping fails ``host ping.maxFailure`` times in a row
becomes Disconnected; a Disconnected host that answers again is reconnected when
``host connection.autoReconnectOnError`` is on; an agent answering as another host is
reconnected at once. Ownership is re-read every round, so hosts follow ring changes by
themselves; ``adopt`` only wakes the loop and reconnects hosts a departed node left
Connecting. At start, owned hosts left Connecting (and, with ``host reconnectAllOnBoot``,
every owned host) are reconnected: nothing stays transitional.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from sqlalchemy import select

from zstackpy.core.context import NodeContext
from zstackpy.core.errors import ZError
from zstackpy.core.membership import RingChange
from zstackpy.core.ring import Ring
from zstackpy.services.host.configs import (
    AUTO_RECONNECT,
    PING_INTERVAL,
    PING_MAX_FAILURE,
    PING_PARALLELISM,
    PING_TIMEOUT,
    RECONNECT_ALL_ON_BOOT,
)
from zstackpy.services.host.extensions import HostPingExtension, PingRider
from zstackpy.services.host.messages import HostErr, HostStatus
from zstackpy.services.host.models import HostVO
from zstackpy.services.host.records import backend_for, host_queue, set_status

log = logging.getLogger(__name__)

T = TypeVar("T")

# (host uuid, why) -> True when the host is Connected afterwards; queues itself.
Reconnect = Callable[[str, str], Awaitable[bool]]

_PINGED = (HostStatus.CONNECTED, HostStatus.DISCONNECTED)
# The share of ``host ping.interval`` a round's pings are spread over (the rest is slack
# for slow answers, so a round rarely runs into the next).
ROUND_SPREAD = 0.8


class PingTracker:
    def __init__(self, ctx: NodeContext, reconnect: Reconnect) -> None:
        self._ctx = ctx
        self._reconnect = reconnect
        self._failures: dict[str, int] = {}  # owned hosts' failed pings in a row
        self._pending: set[str] = set()  # hosts to reconnect before the next round
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._unwatch: Callable[[], None] | None = None
        self.rounds = 0  # completed rounds, for tests and metrics

    # ----- lifecycle --------------------------------------------------------------------

    async def start(self) -> None:
        # A shorter interval set through the API must not wait out the old, longer sleep.
        self._unwatch = self._ctx.configs.watch(
            PING_INTERVAL.category, PING_INTERVAL.name, lambda _old, _new: self._wake.set()
        )
        # Read now, before the node serves: hosts added after the start are not "left over".
        statuses = (
            HostStatus.CONNECTING,
            *(_PINGED if self._ctx.configs.value(RECONNECT_ALL_ON_BOOT) else ()),
        )
        self._pending.update(await self._owned_uuids(statuses))

    def begin(self) -> None:
        """Start the rounds (the host service calls it when the node is ready)."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="host-ping-tracker")

    async def stop(self) -> None:
        if self._unwatch is not None:
            self._unwatch()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    # ----- what the host service tells it ----------------------------------------------

    def connected(self, host_uuid: str) -> None:
        """A (re)connect succeeded: its failure count starts again."""
        self._failures.pop(host_uuid, None)

    def forget(self, host_uuid: str) -> None:
        self._failures.pop(host_uuid, None)

    async def adopt(self, change: RingChange) -> None:
        """After a ring change: ping newly owned hosts now, and reconnect those a node that
        left had in Connecting (its add or reconnect died with it). Only records the work:
        the loop does it, so the heartbeat's takeover hooks are not held up."""
        if change.left:
            before = Ring((change.ring.nodes - change.joined) | change.left)
            self._pending.update(
                uuid
                for uuid in await self._owned_uuids((HostStatus.CONNECTING,))
                if before.owner(uuid) in change.left
            )
        self._wake.set()

    # ----- the loop ---------------------------------------------------------------------

    async def _run(self) -> None:
        configs = self._ctx.configs
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            self._wake.clear()  # a wake during this round asks for the next one at once
            try:
                pending, self._pending = sorted(self._pending), set()
                await self._reconnect_all(pending, "management node start or takeover")
                await self._round()
            except Exception:
                # A failed round (database hiccup) must not end the tracking of every host.
                log.exception("host ping round failed")
            self.rounds += 1
            wait = configs.value(PING_INTERVAL) - (loop.time() - started)
            if wait > 0:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(wait):
                        await self._wake.wait()

    async def _round(self) -> None:
        hosts = await self._owned_hosts(_PINGED)
        owned = {h.uuid for h in hosts}
        for uuid in [u for u in self._failures if u not in owned]:
            del self._failures[uuid]  # deleted, or now another node's
        # Spread over most of the interval: 100,000 hosts pinged in one burst would hold
        # the node's CPU (and every API call's latency) for the burst's length each round.
        spread = self._ctx.configs.value(PING_INTERVAL) * ROUND_SPREAD
        await self._each(hosts, self._ping, spread=spread)

    async def _ping(self, host: HostVO) -> None:
        configs = self._ctx.configs
        riders = await self._riders(host) if host.status == HostStatus.CONNECTED else []
        fields = {k: v for rider in riders for k, v in rider.fields.items()}
        try:
            backend = backend_for(self._ctx, host.hypervisor_type)
            answer = await backend.ping(host, configs.value(PING_TIMEOUT), fields)
        except ZError as exc:
            if exc.code == HostErr.IDENTITY_MISMATCH:
                await self._reconnect(host.uuid, exc.description)
                return
            failures = self._failures.get(host.uuid, 0) + 1
            self._failures[host.uuid] = failures
            if host.status == HostStatus.CONNECTED and failures >= configs.value(PING_MAX_FAILURE):
                await self._ctx.queues.run(
                    host_queue(host.uuid), self._disconnect, host.uuid, exc.description
                )
            return
        self._failures.pop(host.uuid, None)
        if host.status == HostStatus.DISCONNECTED and configs.value(AUTO_RECONNECT):
            await self._reconnect(host.uuid, "the agent answers pings again")
        for rider in riders:
            if rider.answered is None:
                continue
            try:
                await rider.answered(answer)
            except Exception:
                # A hook's failure must not end the ping round.
                log.exception("after-ping hook of host %s failed", host.uuid)

    async def _riders(self, host: HostVO) -> list[PingRider]:
        riders = []
        for extension in self._ctx.plugins.extensions(HostPingExtension):
            try:
                rider = await extension.before_ping(host)
            except Exception:
                log.exception("before-ping hook of host %s failed", host.uuid)
                continue
            if rider is not None:
                riders.append(rider)
        return riders

    async def _disconnect(self, host_uuid: str, reason: str) -> None:
        # In the host's queue: a reconnect that finished meanwhile has reset the count.
        if self._failures.get(host_uuid, 0) >= self._ctx.configs.value(PING_MAX_FAILURE):
            log.info("host %s is disconnected: %s", host_uuid, reason)
            async with self._ctx.db.session() as session:
                status = await session.scalar(select(HostVO.status).where(HostVO.uuid == host_uuid))
            if status == HostStatus.CONNECTED:
                await set_status(self._ctx, host_uuid, HostStatus.DISCONNECTED, reason)

    # ----- helpers ----------------------------------------------------------------------

    async def _reconnect_all(self, uuids: list[str], reason: str) -> None:
        async def one(uuid: str) -> None:
            await self._reconnect(uuid, reason)

        await self._each(uuids, one)

    async def _each(
        self, items: list[T], fn: Callable[[T], Awaitable[None]], spread: float = 0.0
    ) -> None:
        """``fn`` on every item, at most ``host ping.parallelismDegree`` at once; with
        ``spread``, item i starts no sooner than i x spread / len(items) s from now."""
        pending = iter(enumerate(items))
        loop = asyncio.get_running_loop()
        begin = loop.time()
        slot = spread / len(items) if items else 0.0

        async def worker() -> None:
            for index, item in pending:
                delay = begin + index * slot - loop.time()
                if delay > 0 and not self._wake.is_set():
                    # A wake (the interval changed, hosts were adopted) ends the pacing:
                    # the rest go now and the next round, at the new pace, starts at once.
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(delay):
                            await self._wake.wait()
                try:
                    await fn(item)
                except ZError as exc:
                    log.warning("host tracking step failed: %s", exc)

        workers = min(len(items), self._ctx.configs.value(PING_PARALLELISM))
        if workers == 0:
            return
        async with asyncio.TaskGroup() as group:
            for _ in range(workers):
                group.create_task(worker())

    async def _owned_hosts(self, statuses: tuple[str, ...]) -> list[HostVO]:
        async with self._ctx.db.session() as session:
            rows = await session.execute(select(HostVO).where(HostVO.status.in_(statuses)))
            hosts = list(rows.scalars())
        return [h for h in hosts if self._owns(h.uuid)]

    async def _owned_uuids(self, statuses: tuple[str, ...]) -> list[str]:
        async with self._ctx.db.session() as session:
            rows = await session.execute(select(HostVO.uuid).where(HostVO.status.in_(statuses)))
            uuids = list(rows.scalars())
        return [u for u in uuids if self._owns(u)]

    def _owns(self, host_uuid: str) -> bool:
        return self._ctx.ring.is_owner(self._ctx.node_uuid, host_uuid)
