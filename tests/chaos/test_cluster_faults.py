"""Faults of a two-node cluster under load, on private servers the harness starts (a
mariadbd and a RabbitMQ node of its own on free ports, never the shared ones): a node
killed with kill -9, a node drained with SIGTERM, the broker stopped and started, the
database stopped and started. One harness run for the four (the servers start once)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.chaos.conftest import assert_invariants, chaos, require_private_servers

pytestmark = pytest.mark.real_server

FAULTS = ("node-kill", "node-drain", "broker-outage", "db-outage")


@pytest.mark.timeout(420)
async def test_every_invariant_holds_through_cluster_faults(tmp_path: Path) -> None:
    require_private_servers()
    results = await chaos(
        tmp_path, *FAULTS, args=("--nodes", "2", "--hosts", "2", "--ops", "24"), timeout=400
    )
    assert set(results) == set(FAULTS)
    for result in results.values():
        assert_invariants(result)

    # kill -9: the survivor adopts the dead node's work within two detection periods.
    killed = results["node-kill"]
    assert killed["recoveryS"] is not None
    assert killed["recoveryS"] <= killed["recoveryBoundS"]
    assert list(killed["rings"].values()) == [1]

    # SIGTERM drains: what the node had accepted ended, none of it for its departure.
    drained = results["node-drain"]
    assert list(drained["rings"].values()) == [1]
    assert "SYS.1012" not in drained["drainedJobs"], drained["drainedJobs"]
    assert drained["recoveryS"] is not None
    assert drained["recoveryS"] <= drained["recoveryBoundS"]

    # Broker outage: every node reconnected and the broker shows its consumers again.
    broker = results["broker-outage"]
    assert list(broker["rings"].values()) == [2, 2]
    assert set(broker["consumers"].values()) == {"all present"}, broker["consumers"]

    # A short database outage evicts nobody.
    db = results["db-outage"]
    assert list(db["rings"].values()) == [2, 2], db["rings"]
