"""The slow-message log keeps to its line budget on a saturated node and says what it left
out."""

from __future__ import annotations

import logging

import pytest

from zstackpy.core.config import GlobalConfigs
from zstackpy.core.kernel_configs import SLOW_MESSAGE_THRESHOLD
from zstackpy.node.metrics import slowlog
from zstackpy.node.metrics.slowlog import SlowMessageLog


def test_a_burst_is_cut_to_the_budget_and_the_next_line_counts_the_rest(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    configs = GlobalConfigs()
    configs.define(SLOW_MESSAGE_THRESHOLD)
    slow = SlowMessageLog(configs)
    now = [1000.0]
    monkeypatch.setattr("zstackpy.node.metrics.slowlog.time.monotonic", lambda: now[0])
    with caplog.at_level(logging.WARNING, logger="zstackpy.slow_messages"):
        for _ in range(slowlog.LINES_PER_WINDOW + 5):
            slow.report("APICreateVmInstanceMsg", "api.portal", 12.0, "success", [])
        assert len(caplog.records) == slowlog.LINES_PER_WINDOW
        assert slow.left_out == 5
        now[0] += slowlog.WINDOW_S
        slow.report("APICreateVmInstanceMsg", "api.portal", 12.0, "VM.1001", [])
    last = caplog.records[-1].getMessage()
    assert last.startswith("slow message APICreateVmInstanceMsg on api.portal: 12.000 s")
    assert "VM.1001" in last
    assert "(5 slow messages before this one not logged)" in last
    assert slow.left_out == 0
