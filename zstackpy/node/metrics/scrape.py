"""Metrics read from the node's own counters when Prometheus scrapes: work queues, bus
totals, the database pool, heartbeat and ring, hosts and VMs. Nothing here runs per
message; each scrape reads a few integers per queue kind."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from zstackpy import __version__
from zstackpy.node.metrics.resources import ResourceCounts

if TYPE_CHECKING:
    from zstackpy.node.node import ManagementNode


class NodeCollector(Collector):
    def __init__(self, node: ManagementNode, resources: ResourceCounts) -> None:
        self.node = node
        self.resources = resources

    def collect(self) -> Iterator[Metric]:
        yield from self._node()
        if self.node.ctx is None:
            return
        yield from self._bus()
        yield from self._agents()
        yield from self._queues()
        yield from self._db_pool()
        yield from self._resources()
        yield from self._services()

    def _node(self) -> Iterator[Metric]:
        node = self.node
        info = GaugeMetricFamily(
            "zstack_node_info", "This management node", labels=["uuid", "version"]
        )
        info.add_metric([node.uuid, __version__], 1)
        yield info
        yield GaugeMetricFamily(
            "zstack_node_ready",
            "1 while the node serves (state ready), else 0",
            value=1 if str(node.state) == "ready" else 0,
        )
        beat = node.heartbeat.last_beat_monotonic if node.heartbeat is not None else None
        if beat is not None:
            yield GaugeMetricFamily(
                "zstack_node_heartbeat_age_seconds",
                "Seconds since this node last wrote its heartbeat to the database",
                value=time.monotonic() - beat,
            )
        if node.ctx is not None:
            yield GaugeMetricFamily(
                "zstack_ring_nodes",
                "Management nodes in this node's consistent-hash ring",
                value=len(node.ctx.ring.nodes),
            )

    def _bus(self) -> Iterator[Metric]:
        bus = self.node.context.bus
        stats = bus.stats
        for name, value, doc in (
            ("sent", stats.sent, "Messages this node sent (calls and sends)"),
            ("received", stats.received, "Messages this node received to handle"),
            ("replies", stats.replies, "Replies this node received"),
            ("timeouts", stats.timeouts, "Calls from this node that timed out"),
            ("undecodable", stats.undecodable, "Messages dead-lettered as undecodable"),
            ("events_published", stats.events_published, "Events this node published"),
            ("events_received", stats.events_received, "Events this node's subscribers got"),
        ):
            yield CounterMetricFamily(f"zstack_bus_{name}", doc, value=value)
        yield GaugeMetricFamily(
            "zstack_bus_calls_in_flight",
            "Calls from this node waiting for their reply",
            value=bus.in_flight(),
        )

    def _agents(self) -> Iterator[Metric]:
        yield CounterMetricFamily(
            "zstack_agent_resends",
            "Agent commands sent again because their callback was late",
            value=self.node.context.agents.resends,
        )

    def _queues(self) -> Iterator[Metric]:
        snapshot = self.node.context.queues.snapshot()
        labels = ["kind"]
        gauges: dict[str, GaugeMetricFamily] = {
            "queues": GaugeMetricFamily(
                "zstack_workqueue_queues", "Work queues alive, by kind", labels=labels
            ),
            "waiting": GaugeMetricFamily(
                "zstack_workqueue_waiting", "Jobs waiting for a slot (queue depth)", labels=labels
            ),
            "running": GaugeMetricFamily(
                "zstack_workqueue_running", "Jobs holding a slot", labels=labels
            ),
            "max_wait_s": GaugeMetricFamily(
                "zstack_workqueue_max_wait_seconds",
                "Longest wait for a slot since the node started",
                labels=labels,
            ),
        }
        counters: dict[str, CounterMetricFamily] = {
            "completed": CounterMetricFamily(
                "zstack_workqueue_completed", "Jobs that ran and returned", labels=labels
            ),
            "failed": CounterMetricFamily(
                "zstack_workqueue_failed", "Jobs that ran and raised", labels=labels
            ),
            "canceled": CounterMetricFamily(
                "zstack_workqueue_canceled", "Jobs that left while waiting", labels=labels
            ),
            "refused": CounterMetricFamily(
                "zstack_workqueue_refused", "Jobs refused by a full queue", labels=labels
            ),
            "granted": CounterMetricFamily(
                "zstack_workqueue_granted",
                "Slots granted (what wait time sums over)",
                labels=labels,
            ),
            "total_wait_s": CounterMetricFamily(
                "zstack_workqueue_wait_seconds",
                "Time jobs waited for a slot, summed",
                labels=labels,
            ),
            "total_run_s": CounterMetricFamily(
                "zstack_workqueue_run_seconds", "Time jobs held a slot, summed", labels=labels
            ),
        }
        for kind, stats in sorted(snapshot.items()):
            for attr, gauge in gauges.items():
                gauge.add_metric([kind], getattr(stats, attr))
            for attr, counter in counters.items():
                counter.add_metric([kind], getattr(stats, attr))
        yield from gauges.values()
        yield from counters.values()

    def _db_pool(self) -> Iterator[Metric]:
        db = self.node.context.db
        yield CounterMetricFamily(
            "zstack_db_write_batches",
            "Transactions the group commit ran (each commits one batch of units)",
            value=db.group_commit.batches,
        )
        yield CounterMetricFamily(
            "zstack_db_write_units",
            "Writes and reads the group commit ran in those transactions",
            value=db.group_commit.units,
        )
        pool = db.engine.pool
        # QueuePool has these; SQLite in memory uses a pool without them: no figures then.
        for attr, name, doc in (
            ("size", "size", "Connections the pool keeps"),
            ("checkedout", "checked_out", "Connections in use"),
            ("checkedin", "idle", "Connections idle in the pool"),
            ("overflow", "overflow", "Connections opened beyond the pool size (may be < 0)"),
        ):
            read = getattr(pool, attr, None)
            if callable(read):
                yield GaugeMetricFamily(f"zstack_db_pool_{name}", doc, value=float(read()))

    def _resources(self) -> Iterator[Metric]:
        counts = self.resources
        hosts = GaugeMetricFamily(
            "zstack_hosts",
            f"Hosts by status and state (counted at most every {counts.ttl_s:g} s)",
            labels=["status", "state"],
        )
        for (status, state), n in sorted(counts.hosts.items()):
            hosts.add_metric([status, state], n)
        vms = GaugeMetricFamily(
            "zstack_vm_instances",
            f"VM instances by state (counted at most every {counts.ttl_s:g} s)",
            labels=["state"],
        )
        for (state,), n in sorted(counts.vms.items()):
            vms.add_metric([state], n)
        yield hosts
        yield vms
        yield GaugeMetricFamily(
            "zstack_resource_counts_stale",
            "1 when the last count of hosts and VMs failed (the figures are older)",
            value=1 if counts.is_stale else 0,
        )

    def _services(self) -> Iterator[Metric]:
        for service in self.node.services.values():
            for figure in service.figures():
                family = CounterMetricFamily if figure.counter else GaugeMetricFamily
                yield family(f"zstack_{figure.name}", figure.doc, value=figure.value)
