"""Agent faults under load (embedded node, simulated hosts): callbacks lost, late or
answered twice; agents killed after acting and before calling back, then restarted. The
node fetches a late result again under the same task id, so nothing runs twice and the
database converges to what the hosts run."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.chaos.conftest import assert_invariants, chaos


@pytest.mark.timeout(300)
async def test_lost_and_late_callbacks_cost_no_operation(tmp_path: Path) -> None:
    result = (await chaos(tmp_path, "agent-callbacks"))["agent-callbacks"]
    assert_invariants(result)
    # Every lost callback was fetched again: no operation failed for it.
    assert result["failed"] == 0, result["table"]
    assert result["succeeded"] == result["accepted"] > 0


@pytest.mark.timeout(300)
async def test_agents_killed_after_acting_never_act_twice(tmp_path: Path) -> None:
    result = (await chaos(tmp_path, "agent-crash"))["agent-crash"]
    assert_invariants(result)
    # Operations that met a dead agent failed with a code of the agent's, host's or VM's
    # domain saying so (never an internal error); none was lost.
    assert all(code.split(".")[0] in ("AGENT", "HOST", "VM") for code in result["errors"]), result[
        "table"
    ]
    assert result["succeeded"] > 0
