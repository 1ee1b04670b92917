"""What the driver reports: latency percentiles, errors by code, and the node's own
figures read from its ``/metrics``."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from prometheus_client.parser import text_string_to_metric_families

from simulator.stress.rest import Answer

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def percentile(sorted_values: list[float], share: float) -> float:
    """Nearest-rank percentile of an ascending list (0 for an empty one)."""
    if not sorted_values:
        return 0.0
    rank = max(1, round(share * len(sorted_values) + 0.5 - 1e-9))
    return sorted_values[min(rank, len(sorted_values)) - 1]


@dataclass
class Latencies:
    """Seconds per call, kept whole (a million floats is 8 MB)."""

    values: list[float] = field(default_factory=list)

    def add(self, seconds: float) -> None:
        self.values.append(seconds)

    def summary(self) -> dict[str, float | int]:
        ordered = sorted(self.values)
        return {
            "count": len(ordered),
            "p50_ms": round(percentile(ordered, 0.50) * 1000, 1),
            "p99_ms": round(percentile(ordered, 0.99) * 1000, 1),
            "max_ms": round((ordered[-1] if ordered else 0.0) * 1000, 1),
        }


@dataclass
class Errors:
    by_code: Counter[str] = field(default_factory=Counter)
    first: dict[str, str] = field(default_factory=dict)  # code -> first description

    def add_answer(self, answer: Answer) -> bool:
        """Count a failed answer; True when it failed."""
        code = answer.error_code
        if code is None:
            return False
        description = ""
        if isinstance(answer.body, dict) and isinstance(answer.body.get("error"), dict):
            description = str(answer.body["error"].get("description", ""))
        self._add(code, description or str(answer.body)[:300])
        return True

    def add_exception(self, exc: BaseException) -> None:
        self._add(f"CLIENT.{type(exc).__name__}", str(exc)[:300])

    def _add(self, code: str, description: str) -> None:
        self.by_code[code] += 1
        self.first.setdefault(code, description)

    @property
    def total(self) -> int:
        return sum(self.by_code.values())


def parse_metrics(text: str) -> Samples:
    """Every sample of an exposition text, keyed by name and labels."""
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def sample(samples: Samples, name: str, **labels: str) -> float:
    """One sample's value; 0 when the node has not reported it (nothing counted yet)."""
    return samples.get((name, frozenset(labels.items())), 0.0)


# Database-wide counts every node reports alike: summing them would count each row once
# per node.
DATABASE_WIDE = ("zstack_hosts", "zstack_vm_instances")


def merge_nodes(per_node: list[Samples]) -> Samples:
    """The samples of several nodes as one: counters and process figures (CPU, RSS)
    summed, database-wide counts from the first node."""
    merged: Samples = {}
    for i, samples in enumerate(per_node):
        for key, value in samples.items():
            if key[0].startswith(DATABASE_WIDE):
                if i == 0:
                    merged[key] = value
            else:
                merged[key] = merged.get(key, 0.0) + value
    return merged
