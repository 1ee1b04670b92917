"""The slow-message log: a message whose handler ran longer than the global config
``cloudBus slowMessageThreshold`` is logged at WARNING with its type, the service that
handled it, how long it took, how it ended and the flow chains it ran (its own and those
of the messages it sent on this node), step by step.

A saturated node makes every message slow: at most ``LINES_PER_WINDOW`` lines are written
per ``WINDOW_S`` seconds, and the next line written says how many were left out.
"""

from __future__ import annotations

import logging
import time

from zstackpy.core.config import GlobalConfigs
from zstackpy.core.flow.trace import FlowTrace, TraceEntry
from zstackpy.core.kernel_configs import SLOW_MESSAGE_THRESHOLD

log = logging.getLogger("zstackpy.slow_messages")

WINDOW_S = 10.0
LINES_PER_WINDOW = 20


class SlowMessageLog:
    """Keeps the threshold current (a config watch), so the hot path reads one float."""

    def __init__(self, configs: GlobalConfigs) -> None:
        self.threshold_s = configs.value(SLOW_MESSAGE_THRESHOLD)
        self._unwatch = configs.watch(
            SLOW_MESSAGE_THRESHOLD.category, SLOW_MESSAGE_THRESHOLD.name, self._changed
        )
        self._window_started = float("-inf")
        self._lines_in_window = 0
        self.left_out = 0  # slow messages not logged since the last line written

    @property
    def is_enabled(self) -> bool:
        return self.threshold_s > 0

    def close(self) -> None:
        self._unwatch()

    def _changed(self, old: object, new: object) -> None:
        if isinstance(new, int | float):
            self.threshold_s = float(new)

    def report(
        self,
        type_name: str,
        service: str,
        seconds: float,
        outcome: str,
        traces: list[FlowTrace],
    ) -> None:
        now = time.monotonic()
        if now - self._window_started >= WINDOW_S:
            self._window_started, self._lines_in_window = now, 0
        if self._lines_in_window >= LINES_PER_WINDOW:
            self.left_out += 1
            return
        self._lines_in_window += 1
        left_out, self.left_out = self.left_out, 0
        log.warning(
            "slow message %s on %s: %.3f s (threshold %g s), %s; chains: %s%s",
            type_name,
            service,
            seconds,
            self.threshold_s,
            outcome,
            describe_runs(traces) if traces else "none",
            f" ({left_out} slow messages before this one not logged)" if left_out else "",
        )


def describe_runs(traces: list[FlowTrace]) -> str:
    """One line for the chain runs: ``vm-create done 1.204 s [allocate-host done 0.003 s,
    ...]``, nested chains in brackets of their own."""
    return "; ".join(
        f"{t.chain} {t.outcome} {t.duration_s:.3f} s [{_entries(t.entries)}]" for t in traces
    )


def _entries(entries: list[TraceEntry]) -> str:
    parts = []
    for entry in entries:
        text = f"{entry.step} {entry.outcome}"
        if entry.outcome != "skipped":
            text += f" {entry.duration_s:.3f} s"
        if entry.error is not None:
            text += f" ({entry.error.code})"
        if entry.is_chain:
            text += f" [{_entries(entry.children)}]"
        parts.append(text)
    return ", ".join(parts)
