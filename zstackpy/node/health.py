"""The node's health check: ready when it is started and not fenced, its database answers,
its bus is connected, it is in the ring and its heartbeat is fresh (older than the
eviction window, the other nodes would already have taken its resources)."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

from sqlalchemy import select

from zstackpy import __version__
from zstackpy.core.db import db_epoch
from zstackpy.core.health import HealthReport
from zstackpy.node.consumer_check import ConsumerCheck

if TYPE_CHECKING:
    from zstackpy.node.node import ManagementNode

_DB_PROBE_TIMEOUT_S = 2.0


class NodeHealth:
    def __init__(self, node: ManagementNode) -> None:
        self.node = node
        self._consumer_check: ConsumerCheck | None = None

    async def check(self) -> HealthReport:
        node = self.node
        checks: dict[str, str] = {}
        reasons: list[str] = []
        if node.state != "ready":
            reasons.append(f"node is {node.state}")
        ctx = node.ctx
        ring: list[str] = []
        if ctx is not None:
            try:
                async with asyncio.timeout(_DB_PROBE_TIMEOUT_S):
                    async with ctx.db.session() as session:
                        await session.execute(select(db_epoch()))
                checks["database"] = "ok"
            except Exception as exc:
                checks["database"] = f"unreachable: {type(exc).__name__}"
                reasons.append("database unreachable")
            ring = sorted(ctx.ring.nodes)
            is_joined = node.uuid in ctx.ring
            checks["ring"] = "joined" if is_joined else "not joined"
            if not is_joined:
                reasons.append("not in the ring")
            checks["bus"] = "amqp" if node.settings.bus_url else "in-process"
            if not getattr(ctx.bus.transport, "is_connected", True):
                checks["bus"] += " (disconnected)"
                reasons.append("bus disconnected")
            else:
                await self._consumers(checks, reasons)
            self._heartbeat(checks, reasons)
        return HealthReport(
            node_uuid=node.uuid,
            node_state=str(node.state),
            version=__version__,
            uptime_s=time.time() - node.started_at,
            ring=ring,
            checks=checks,
            reasons=reasons,
        )

    async def _consumers(self, checks: dict[str, str], reasons: list[str]) -> None:
        """On RabbitMQ, whether the broker sees a consumer on every queue of this node: a
        reconnect that left one out would make the node deaf to that service
        (``consumer_check.py``: a recent check of the same connection is reused)."""
        consumer_check = self._consumers_of_bus()
        if consumer_check is None:
            return
        checks["consumers"], reason = await consumer_check.view(_DB_PROBE_TIMEOUT_S)
        if reason is not None:
            reasons.append(reason)

    def prime(self) -> None:
        """The node is ready: check its bus consumers now, before anyone asks."""
        consumer_check = self._consumers_of_bus()
        if consumer_check is not None:
            consumer_check.prime()

    def _consumers_of_bus(self) -> ConsumerCheck | None:
        """The check of the bus's consumers; None on a bus without (in-process)."""
        ctx = self.node.ctx
        assert ctx is not None
        transport = ctx.bus.transport
        missing_consumers = getattr(transport, "missing_consumers", None)
        if missing_consumers is None:
            return None
        if self._consumer_check is None:
            self._consumer_check = ConsumerCheck(
                missing_consumers, lambda: int(getattr(transport, "generation", 0))
            )
        return self._consumer_check

    def _heartbeat(self, checks: dict[str, str], reasons: list[str]) -> None:
        beat = self.node.heartbeat
        if beat is None or beat.last_beat_monotonic is None:
            checks["heartbeat"] = "none yet"
            return
        age = time.monotonic() - beat.last_beat_monotonic
        checks["heartbeat"] = f"{age:.1f} s ago"
        if age > beat.window:
            reasons.append(f"heartbeat is {age:.0f} s old (eviction window {beat.window:g} s)")
