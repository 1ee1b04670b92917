"""kill -9 of the embedded node under load, then a start on the same database: the new
process fails the jobs the dead one ran (SYS.1012), settles every VM left mid-operation
by asking its host, reconnects the hosts, and serves again within the bound."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.chaos.conftest import assert_invariants, chaos


@pytest.mark.timeout(300)
async def test_a_restart_leaves_nothing_lost_or_stuck(tmp_path: Path) -> None:
    result = (await chaos(tmp_path, "node-restart"))["node-restart"]
    assert_invariants(result)
    assert result["recoveryS"] is not None
    assert result["recoveryS"] <= result["recoveryBoundS"]
