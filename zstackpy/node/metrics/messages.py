"""Bus and API metrics, taken as each message is handled (a ``HandleObserver``).

Labels are bounded sets: message type names, service names, API names, error codes,
never a resource or message id. Children are looked up once per label set and kept, so a
message costs two clock reads, a dict lookup and a histogram observation.
"""

from __future__ import annotations

import time
from typing import cast

from prometheus_client import CollectorRegistry, Counter

from zstackpy.core.bus import API_PORTAL, Envelope, Message, Reply
from zstackpy.core.flow import runs as message_runs
from zstackpy.core.flow.runs import MessageRuns
from zstackpy.node.metrics.histogram import HistogramChild, LoopHistogram
from zstackpy.node.metrics.slowlog import SlowMessageLog

# Seconds: from a local in-memory reply (~50 µs) to a VM create that waited out a burst.
LATENCY_BUCKETS = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    300.0,
)
SUCCESS = "success"


class MessageMetrics:
    """Installed as ``bus.observer`` by the node."""

    def __init__(self, registry: CollectorRegistry, slow_log: SlowMessageLog) -> None:
        self.slow_log = slow_log
        self._handle = LoopHistogram(
            "zstack_bus_message_handle_seconds",
            "Time handlers took for the messages this node handled, by message type and service",
            ["type", "service"],
            LATENCY_BUCKETS,
            registry,
        )
        self._errors = Counter(
            "zstack_bus_message_errors_total",
            "Messages this node handled that were answered with an error, by error code",
            ["type", "service", "code"],
            registry=registry,
        )
        self._api_seconds = LoopHistogram(
            "zstack_api_request_seconds",
            "Time API calls took from the API portal to their reply (a job's whole run for "
            "an async API), by API name",
            ["api"],
            LATENCY_BUCKETS,
            registry,
        )
        self._api_results = Counter(
            "zstack_api_requests_total",
            "API calls this node's API portal handled, by API name and result (success or "
            "the error code)",
            ["api", "result"],
            registry=registry,
        )
        self._handle_children: dict[tuple[str, str], HistogramChild] = {}
        self._api_children: dict[str, tuple[str, HistogramChild]] = {}

    # ----- HandleObserver ---------------------------------------------------------------

    def handling(self, env: Envelope, msg: Message) -> object:
        runs = message_runs.begin() if self.slow_log.is_enabled else None
        return (time.perf_counter(), runs)

    def handled(self, token: object, env: Envelope, msg: Message, reply: Reply | None) -> None:
        started, runs = cast(tuple[float, MessageRuns | None], token)  # handling()'s
        seconds = time.perf_counter() - started
        key = (env.type_name, env.service)
        child = self._handle_children.get(key)
        if child is None:
            child = self._handle_children[key] = self._handle.labels(*key)
        child.observe(seconds)
        result = SUCCESS
        if reply is not None and not reply.success:
            result = reply.error.code if reply.error is not None else "unknown"
            self._errors.labels(env.type_name, env.service, result).inc()
        if env.service == API_PORTAL:
            self._api(env.type_name, msg, seconds, result)
        if runs is not None:
            traces = runs.close()
            if seconds >= self.slow_log.threshold_s > 0:
                self.slow_log.report(env.type_name, env.service, seconds, result, traces)

    def _api(self, type_name: str, msg: Message, seconds: float, result: str) -> None:
        known = self._api_children.get(type_name)
        if known is None:
            spec = getattr(msg, "api", None)
            name = str(getattr(spec, "name", "") or type_name)
            known = self._api_children[type_name] = (name, self._api_seconds.labels(name))
        name, child = known
        child.observe(seconds)
        self._api_results.labels(name, result).inc()
