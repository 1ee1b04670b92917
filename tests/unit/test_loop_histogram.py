"""The metrics' lock-free histogram reads back as a Prometheus histogram."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from zstackpy.node.metrics.histogram import LoopHistogram


def test_buckets_are_cumulative_and_a_bound_belongs_to_its_bucket() -> None:
    registry = CollectorRegistry()
    hist = LoopHistogram("t_seconds", "test", ["chain"], [0.1, 1.0], registry)
    child = hist.labels("vm-create")
    assert hist.labels("vm-create") is child
    for value in (0.05, 0.1, 0.5, 1.0, 3.0):
        child.observe(value)
    hist.labels("host-connect")  # a label set with no observation yet
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(generate_latest(registry).decode())
        for s in family.samples
    }

    def bucket(le: str, chain: str = "vm-create") -> float:
        return samples[("t_seconds_bucket", (("chain", chain), ("le", le)))]

    assert bucket("0.1") == 2
    assert bucket("1.0") == 4
    assert bucket("+Inf") == 5
    assert samples[("t_seconds_count", (("chain", "vm-create"),))] == 5
    assert samples[("t_seconds_sum", (("chain", "vm-create"),))] == 4.65
    assert bucket("+Inf", "host-connect") == 0
