"""The node's Prometheus metrics (``GET /metrics``) and the slow-message log.

``NodeMetrics`` owns one registry per node (several nodes may share a process in tests)
and installs the cheap hooks the kernel offers: ``bus.observer`` (messages and API calls),
``flows.observer`` (chain runs), ``agents.observer`` (agent commands). Everything else is
read when scraped (``scrape.py``, ``resources.py``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import (
    CONTENT_TYPE_PLAIN_0_0_4,
    CollectorRegistry,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.metrics_core import Metric
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

from zstackpy.node.metrics.messages import MessageMetrics
from zstackpy.node.metrics.operations import AgentMetrics, ChainMetrics
from zstackpy.node.metrics.resources import ResourceCounts
from zstackpy.node.metrics.scrape import NodeCollector
from zstackpy.node.metrics.slowlog import SlowMessageLog

if TYPE_CHECKING:
    from zstackpy.node.node import ManagementNode

__all__ = ["CONTENT_TYPE", "NodeMetrics", "SlowMessageLog"]

# The text format every Prometheus version reads.
CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4

# A ``_created`` series per label set doubles the output and tells nothing a restart
# does not (process_start_time_seconds). The switch is process-wide; the node owns it.
disable_created_metrics()  # type: ignore[no-untyped-call]  # prometheus-client leaves it unannotated


class NodeMetrics:
    def __init__(self, node: ManagementNode) -> None:
        ctx = node.context
        self.registry = CollectorRegistry()
        # process_cpu_seconds_total, process_resident_memory_bytes, open fds, ...: read
        # from /proc in a thread at each scrape (file reads stay off the event loop).
        self._process = ProcessCollector(registry=None)
        self._process_figures = _Figures()
        self.registry.register(self._process_figures)
        self.slow_log = SlowMessageLog(ctx.configs)
        self.resources = ResourceCounts(ctx.db)
        self.messages = MessageMetrics(self.registry, self.slow_log)
        self.chains = ChainMetrics(self.registry)
        self.agents = AgentMetrics(self.registry)
        self.registry.register(NodeCollector(node, self.resources))
        ctx.bus.observer = self.messages
        ctx.flows.observer = self.chains
        ctx.agents.observer = self.agents

    async def render(self) -> bytes:
        """The exposition text; counts hosts and VMs first if the copy is old."""
        await self.resources.refresh()
        self._process_figures.metrics = await asyncio.to_thread(
            lambda: list(self._process.collect())
        )
        return generate_latest(self.registry)

    def close(self) -> None:
        self.slow_log.close()


class _Figures(Collector):
    """Metrics read elsewhere (a thread), handed over as they are."""

    def __init__(self) -> None:
        self.metrics: list[Metric] = []

    def collect(self) -> Iterator[Metric]:
        return iter(self.metrics)
