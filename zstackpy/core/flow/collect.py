"""Collect the traces of every chain run on behalf of one caller (an API job).

A chain does not know who asked for it: the request crosses the bus before a service runs
the chain, and services must not learn about jobs. A context variable does cross it on
this node, because the in-process bus hands a message to its handler in a task created
from the sender's context (and work queues run jobs in the caller's task), so a collector
set by the job's task is seen by every chain that job causes here. On other nodes (a
cluster on RabbitMQ) ``TraceCarrier``, a bus context carrier, asks the handler's node to
collect too and brings its traces back with the reply.

Tasks started under a collector and left running (a host's ping loop started by its add)
keep seeing it; ``close()`` makes it ignore them once the caller is done, and ``limit``
bounds what a busy one can hold.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

from zstackpy.core.flow import runs
from zstackpy.core.flow.trace import FlowTrace

__all__ = ["TraceCarrier", "TraceCollector", "collecting", "record_trace"]

# Enough for a VM create with nested chains; more means a runaway background task.
DEFAULT_LIMIT = 64

_current: ContextVar[TraceCollector | None] = ContextVar("flow_trace_collector", default=None)


class TraceCollector:
    """The traces of the chain runs of one caller, in the order they started; a run still
    going shows what it has done so far (``snapshot``)."""

    __slots__ = ("closed", "limit", "remote", "traces")

    def __init__(self, limit: int = DEFAULT_LIMIT) -> None:
        self.limit = limit
        self.traces: list[FlowTrace] = []
        self.remote: list[dict[str, Any]] = []  # ended runs of other nodes, as JSON
        self.closed = False

    def add(self, trace: FlowTrace) -> None:
        if not self.closed and len(self.traces) + len(self.remote) < self.limit:
            self.traces.append(trace)

    def add_remote(self, traces: list[dict[str, Any]]) -> None:
        room = self.limit - len(self.traces) - len(self.remote)
        if not self.closed and room > 0:
            self.remote.extend(traces[:room])

    def snapshot(self) -> list[dict[str, Any]]:
        """The JSON form of the traces as they are now, in the order they started."""
        local = [trace.to_dict() for trace in self.traces]
        if not self.remote:
            return local
        return sorted(local + self.remote, key=lambda t: float(t.get("started_at") or 0.0))

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
    runs.record(trace)  # the handled message's own record (slow-message log)


COLLECT_HEADER = "zstack-collect-traces"
TRACES_HEADER = "zstack-flow-traces"


class TraceCarrier:
    """A bus ContextCarrier (``core.bus.carriers``): a call made while collecting asks the
    node that handles it to collect as well, and that node's traces come back with the
    reply, into the caller's collector."""

    def outgoing(self) -> dict[str, str]:
        collector = _current.get()
        if collector is None or collector.closed:
            return {}
        return {COLLECT_HEADER: "1"}

    def handling(self, headers: dict[str, str]) -> Callable[[], dict[str, str]] | None:
        if COLLECT_HEADER not in headers:
            return None
        inherited = _current.get()
        if inherited is not None and not inherited.closed:
            # Delivered in-process after all (the shared API portal may be this node): the
            # handler's task saw the caller's collector, and the chains report to it live.
            return None
        collector = collecting()  # in the handler's own task

        def done() -> dict[str, str]:
            traces = collector.close()
            return {TRACES_HEADER: json.dumps(traces)} if traces else {}

        return done

    def replied(self, headers: dict[str, str]) -> None:
        raw = headers.get(TRACES_HEADER)
        collector = _current.get()
        if raw and collector is not None:
            traces = json.loads(raw)
            if isinstance(traces, list):
                collector.add_remote([t for t in traces if isinstance(t, dict)])
