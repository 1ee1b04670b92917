"""What one chain run did: per step, when it started, how long it took, how it ended.

Plain slotted dataclasses, because one entry is recorded per flow on the hot path;
``to_dict()`` builds the JSON form (what the API shows) only when asked.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from zstackpy.core.errors import ErrorInfo, ZError

__all__ = ["FlowTrace", "Outcome", "TraceEntry", "trace_of"]


class Outcome(StrEnum):
    """How a step ended.

    ``failed`` marks the step whose ``run`` raised (its own rollback still ran; a failure of
    that rollback is in ``rollback_error``). A chain step takes the worst outcome of its
    children: failed > rollback-failed > rolled-back > done. ``running`` is only seen in the
    trace of a run still going (a collector holds it from the start): every step and run
    that ends leaves it.
    """

    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    ROLLED_BACK = "rolled-back"
    ROLLBACK_FAILED = "rollback-failed"
    SKIPPED = "skipped"


_SEVERITY = {
    Outcome.SKIPPED: 0,
    Outcome.RUNNING: 0,
    Outcome.DONE: 1,
    Outcome.ROLLED_BACK: 2,
    Outcome.ROLLBACK_FAILED: 3,
    Outcome.FAILED: 4,
}


@dataclass(slots=True)
class TraceEntry:
    """One step of a run: a flow, or a nested chain with ``children``.

    ``offset_s`` is the start relative to the run's start (monotonic clock).
    """

    step: str
    is_chain: bool = False
    offset_s: float = 0.0
    duration_s: float = 0.0
    outcome: Outcome = Outcome.SKIPPED
    error: ErrorInfo | None = None
    rollback_duration_s: float | None = None
    rollback_error: ErrorInfo | None = None
    children: list[TraceEntry] = field(default_factory=list)

    def settle(self) -> Outcome:
        """Derive a chain entry's outcome from its children (after a rollback)."""
        if self.is_chain and self.children:
            self.outcome = max(
                (child.settle() for child in self.children), key=_SEVERITY.__getitem__
            )
        return self.outcome

    def to_dict(self, run_started_at: float) -> dict[str, Any]:
        out: dict[str, Any] = {
            "step": self.step,
            "kind": "chain" if self.is_chain else "flow",
            "outcome": str(self.outcome),
        }
        if self.outcome is not Outcome.SKIPPED:
            out["started_at"] = run_started_at + self.offset_s
            out["duration_s"] = self.duration_s
        if self.error is not None:
            out["error"] = self.error.model_dump(mode="json")
        if self.rollback_duration_s is not None:
            out["rollback_duration_s"] = self.rollback_duration_s
        if self.rollback_error is not None:
            out["rollback_error"] = self.rollback_error.model_dump(mode="json")
        if self.is_chain:
            out["children"] = [c.to_dict(run_started_at) for c in self.children]
        return out


@dataclass(slots=True)
class FlowTrace:
    """The record of one chain run; ``started_at`` is wall-clock (epoch seconds).

    ``steps`` is the number of top-level steps of the chain: with the entries recorded so
    far, it tells how far a run still going has come."""

    chain: str
    started_at: float
    duration_s: float = 0.0
    outcome: Outcome = Outcome.DONE
    steps: int = 0
    error: ErrorInfo | None = None
    entries: list[TraceEntry] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form, as the API shows it."""
        return {
            "chain": self.chain,
            "started_at": self.started_at,
            "duration_s": self.duration_s,
            "outcome": str(self.outcome),
            "steps": self.steps,
            "error": None if self.error is None else self.error.model_dump(mode="json"),
            "entries": [e.to_dict(self.started_at) for e in self.entries],
        }

    def flat(self) -> list[TraceEntry]:
        """Every flow entry (not chain entries), depth first, in execution order."""
        out: list[TraceEntry] = []
        stack = list(reversed(self.entries))
        while stack:
            entry = stack.pop()
            if entry.is_chain:
                stack.extend(reversed(entry.children))
            else:
                out.append(entry)
        return out


def trace_of(exc: BaseException) -> FlowTrace | None:
    """The trace a failed chain run attached to its ``ZError``, if any."""
    if not isinstance(exc, ZError):
        return None
    return exc.trace if isinstance(exc.trace, FlowTrace) else None
