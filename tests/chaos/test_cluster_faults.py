"""Faults of a two-node cluster under load, on private servers the harness starts (a
mariadbd and a RabbitMQ node of its own on free ports, never the shared ones): a node
killed with kill -9, a node drained with SIGTERM, the broker stopped and started, the
database stopped and started, briefly and for longer than the heartbeat window. One
harness run for the five (the servers start once)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.chaos.conftest import assert_invariants, chaos, require_private_servers

pytestmark = pytest.mark.real_server

FAULTS = ("node-kill", "node-drain", "broker-outage", "db-outage", "db-outage-long")
HEARTBEAT_WINDOW_S = 3  # the harness's: 1 s x 3


@pytest.mark.timeout(540)
async def test_every_invariant_holds_through_cluster_faults(tmp_path: Path) -> None:
    require_private_servers()
    results = await chaos(
        tmp_path, *FAULTS, args=("--nodes", "2", "--hosts", "2", "--ops", "24"), timeout=520
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

    # A long one: past a heartbeat window every node holds its agent commands (none
    # reached the simulator) and reports not ready; nobody is evicted; once the database
    # is back the nodes are ready and ping the hosts again (recovery), nothing is lost or
    # stuck (the invariants above).
    long = results["db-outage-long"]
    hold = long["hold"]
    assert hold["outageS"] > 2 * HEARTBEAT_WINDOW_S, hold
    assert hold["agentCommands"] == {}, hold
    assert hold["healthSamples"] > 0, hold
    assert hold["readyAnswers"] == 0, hold
    assert list(long["rings"].values()) == [2, 2], long["rings"]
    assert long["recoveryS"] is not None
    assert "SYS.1010" in long["errors"], long["errors"]  # refused with the outage's code
