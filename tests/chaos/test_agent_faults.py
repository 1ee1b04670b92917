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
    result = await chaos(tmp_path, "agent-callbacks")
    assert_invariants(result)
    # Every lost callback was fetched again: no operation failed for it.
    assert result["failed"] == 0, result["table"]
    assert result["succeeded"] == result["accepted"] > 0


@pytest.mark.timeout(300)
async def test_agents_killed_after_acting_never_act_twice(tmp_path: Path) -> None:
    result = await chaos(tmp_path, "agent-crash")
    assert_invariants(result)
    # Operations that met a dead agent failed with a code saying so; none was lost.
    assert set(result["errors"]) <= {"AGENT.1001", "AGENT.1002", "HOST.1101", "VM.1001"}, result[
        "table"
    ]
    assert result["succeeded"] > 0
