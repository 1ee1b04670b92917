"""Whether a management node can serve: the report behind ``GET /health`` and the
IsReadyToGo API. The node implements ``HealthCheck``; services reach it as ``ctx.health``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class HealthReport:
    """``checks``: one line per thing probed (database, bus, ring, heartbeat); ``reasons``:
    why the node is not ready (empty when it is)."""

    node_uuid: str
    node_state: str
    version: str
    uptime_s: float
    ring: list[str]
    checks: dict[str, str]
    reasons: list[str]

    @property
    def is_ready(self) -> bool:
        return not self.reasons

    def to_dict(self) -> dict[str, Any]:
        """The JSON body of ``GET /health``."""
        return {
            "uuid": self.node_uuid,
            "state": "ready" if self.is_ready else "not ready",
            "nodeState": self.node_state,
            "version": self.version,
            "uptimeSeconds": round(self.uptime_s, 3),
            "ring": self.ring,
            "checks": self.checks,
            "reasons": self.reasons,
        }


class HealthCheck(Protocol):
    async def check(self) -> HealthReport:
        """Probe now (one database round trip, bounded by a short timeout); never raises."""
        ...
