"""Collect the traces of every chain run on behalf of one caller (an API job).

A chain does not know who asked for it: the request crosses the bus before a service runs
the chain, and services must not learn about jobs. A context variable does cross it on
this node, because the in-process bus hands a message to its handler in a task created
from the sender's context (and work queues run jobs in the caller's task), so a collector
set by the job's task is seen by every chain that job causes here. A chain run on another
node (a cluster on RabbitMQ) is not seen: the bus does not carry context.

Tasks started under a collector and left running (a host's ping loop started by its add)
keep seeing it; ``close()`` makes it ignore them once the caller is done, and ``limit``
bounds what a busy one can hold.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any

from zstackpy.core.flow.trace import FlowTrace

__all__ = ["TraceCollector", "collecting", "record_trace"]

# Enough for a VM create with nested chains; more means a runaway background task.
DEFAULT_LIMIT = 64

_current: ContextVar[TraceCollector | None] = ContextVar("flow_trace_collector", default=None)


class TraceCollector:
    """The traces of the chain runs of one caller, in the order they started; a run still
    going shows what it has done so far (``snapshot``)."""

    __slots__ = ("closed", "limit", "traces")

    def __init__(self, limit: int = DEFAULT_LIMIT) -> None:
        self.limit = limit
        self.traces: list[FlowTrace] = []
        self.closed = False

    def add(self, trace: FlowTrace) -> None:
        if not self.closed and len(self.traces) < self.limit:
            self.traces.append(trace)

    def snapshot(self) -> list[dict[str, Any]]:
        """The JSON form of the traces as they are now."""
        return [trace.to_dict() for trace in self.traces]

    def close(self) -> list[dict[str, Any]]:
        """Stop collecting; the JSON form of what was collected."""
        self.closed = True
        return self.snapshot()


def collecting() -> TraceCollector:
    """Start collecting for the current task (and what it causes); returns the collector.

    Call it at the top of a task of its own: the variable stays set for that task's life."""
    collector = TraceCollector()
    _current.set(collector)
    return collector


def record_trace(trace: FlowTrace) -> None:
    """Called by ``FlowChain.run`` when a run starts; the trace fills in as it goes."""
    collector = _current.get()
    if collector is not None:
        collector.add(trace)
