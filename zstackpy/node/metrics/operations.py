"""Flow-chain and agent-call metrics, told by the hooks of ``FlowRegistry`` and
``AgentClient`` after each run or command. Labels: chain names and command paths, both
fixed by the code (never a resource id)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter

from zstackpy.core.agent import AgentErr
from zstackpy.node.metrics.histogram import HistogramChild, LoopHistogram
from zstackpy.node.metrics.messages import LATENCY_BUCKETS


class ChainMetrics:
    """``flows.observer``: one observation per chain run started by ``FlowRegistry.run``."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self._seconds = LoopHistogram(
            "zstack_flow_chain_seconds",
            "Time flow chain runs took (rollback included), by chain",
            ["chain"],
            LATENCY_BUCKETS,
            registry,
        )
        self._failures = Counter(
            "zstack_flow_chain_failures_total",
            "Flow chain runs that failed and rolled back, by chain",
            ["chain"],
            registry=registry,
        )
        self._children: dict[str, HistogramChild] = {}

    def __call__(self, chain: str, seconds: float, succeeded: bool) -> None:
        child = self._children.get(chain)
        if child is None:
            child = self._children[chain] = self._seconds.labels(chain)
        child.observe(seconds)
        if not succeeded:
            self._failures.labels(chain).inc()


class AgentMetrics:
    """``agents.observer``: one observation per command sent to an agent."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self._seconds = LoopHistogram(
            "zstack_agent_call_seconds",
            "Time agent commands took, queueing for the agent's slots included, by command",
            ["command"],
            LATENCY_BUCKETS,
            registry,
        )
        self._errors = Counter(
            "zstack_agent_call_errors_total",
            "Agent commands that failed, by command and error code",
            ["command", "code"],
            registry=registry,
        )
        self._timeouts = Counter(
            "zstack_agent_call_timeouts_total",
            "Agent commands that got no result in time, by command",
            ["command"],
            registry=registry,
        )
        self._children: dict[str, HistogramChild] = {}

    def __call__(self, command: str, seconds: float, code: str | None) -> None:
        child = self._children.get(command)
        if child is None:
            child = self._children[command] = self._seconds.labels(command)
        child.observe(seconds)
        if code is not None:
            self._errors.labels(command, code).inc()
            if code == AgentErr.TIMEOUT:
                self._timeouts.labels(command).inc()
