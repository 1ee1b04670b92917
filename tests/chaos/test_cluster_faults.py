"""Faults of a cluster's shared parts, under load, on private servers the harness starts
(a mariadbd and a RabbitMQ node of its own on free ports): a node killed with kill -9,
the broker stopped and started, the database stopped and started."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.chaos.conftest import assert_invariants, chaos, require_private_servers

pytestmark = pytest.mark.real_server


@pytest.mark.timeout(300)
async def test_survivors_adopt_a_killed_nodes_work(tmp_path: Path) -> None:
    require_private_servers()
    result = await chaos(tmp_path, "node-kill", "--nodes", "2")
    assert_invariants(result)
    # Takeover within two detection periods (plus one ping round).
    assert result["recoveryS"] is not None
    assert result["recoveryS"] <= result["recoveryBoundS"]
    assert result["liveNodes"] == 1
    assert list(result["rings"].values()) == [1]


@pytest.mark.timeout(300)
async def test_a_broker_outage_is_answered_and_consumers_come_back(tmp_path: Path) -> None:
    require_private_servers()
    result = await chaos(tmp_path, "broker-outage", "--nodes", "2")
    assert_invariants(result)
    # Every node reconnected and the broker shows its consumers on every queue again.
    assert result["liveNodes"] == 2
    assert set(result["consumers"].values()) == {"all present"}, result["consumers"]


@pytest.mark.timeout(300)
async def test_a_short_database_outage_evicts_no_node(tmp_path: Path) -> None:
    require_private_servers()
    result = await chaos(tmp_path, "db-outage", "--nodes", "2")
    assert_invariants(result)
    assert result["liveNodes"] == 2
    assert list(result["rings"].values()) == [2, 2], result["rings"]
