"""One fault at a time, injected while the workload runs.

``strike`` injects the fault, lets it last, heals it and answers the monotonic time from
which recovery is measured (the heal, or the kill for a node that stays dead). The
recovery bound is part of the fault: two detection periods for a node's death.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from simulator.chaos.run import ChaosRun

log = logging.getLogger(__name__)

Strike = Callable[["ChaosRun"], Awaitable[float]]


@dataclass(frozen=True)
class Fault:
    name: str
    strike: Strike
    needs_cluster: bool = False
    # None: only "serves again"; else seconds, given the run's heartbeat window
    bound: Callable[[ChaosRun], float] | None = None
    # It stops a node for good (the others carry on without it); under any other fault
    # every node started must still run at the end.
    stops_a_node: bool = False


async def _none(run: ChaosRun) -> float:
    return time.monotonic()


async def _agent_callbacks(run: ChaosRun) -> float:
    """Callbacks lost (twice per host and command), late (3 s) and duplicated (a resend of
    a task id whose result is cached answers the same result again)."""
    for address in run.host_ips:
        for path in ("/vm/start", "/vm/stop", "/vm/reboot"):
            await run.sim_put(f"/hosts/{address}/faults", {"path": path, "dropCallback": True})
        await run.sim_put(f"/hosts/{address}/faults", {"path": "/vm/destroy", "delay": 3.0})
    await asyncio.sleep(run.fault_seconds)
    for address in run.host_ips:
        await run.sim_delete(f"/hosts/{address}/faults")
    return time.monotonic()


async def _agent_crash(run: ChaosRun) -> float:
    """Agents die after acting and before calling back (2 s down, restarted without
    their task cache), then every agent restarts once more."""
    for address in run.host_ips:
        for path in ("/vm/start", "/vm/stop"):
            body = {"path": path, "downFor": 2.0, "times": 1}
            await run.sim_put(f"/hosts/{address}/crash", body)
    await asyncio.sleep(run.fault_seconds)
    for address in run.host_ips:
        await run.sim_post(f"/hosts/{address}/restart", {"downFor": 0.5})
    return time.monotonic()


async def _node_restart(run: ChaosRun) -> float:
    """kill -9 a node at a random moment and start it again on the same database."""
    index = random.randrange(len(run.sut.nodes))  # noqa: S311
    await run.sut.kill(index)
    await asyncio.sleep(run.fault_seconds)
    await run.sut.start_node(index)
    return time.monotonic()


async def _node_kill(run: ChaosRun) -> float:
    """kill -9 one node of the cluster; the survivors adopt its resources."""
    index = random.randrange(len(run.sut.nodes))  # noqa: S311
    await run.sut.kill(index)
    return time.monotonic()


async def _node_drain(run: ChaosRun) -> float:
    """SIGTERM one node of the cluster: it takes no new job, lets its running jobs end,
    then leaves the ring."""
    index = random.randrange(len(run.sut.nodes))  # noqa: S311
    run.drained_url = run.sut.nodes[index].url
    await run.sut.terminate(index)
    return time.monotonic()


async def _broker_outage(run: ChaosRun) -> float:
    assert run.sut.servers is not None
    await run.sut.servers.bus.stop_app()
    await asyncio.sleep(run.fault_seconds)
    await run.sut.servers.bus.start_app()
    return time.monotonic()


async def _db_outage(run: ChaosRun) -> float:
    assert run.sut.servers is not None
    await run.sut.servers.db.stop()
    await asyncio.sleep(run.fault_seconds)
    await run.sut.servers.db.start()
    return time.monotonic()


async def _db_outage_long(run: ChaosRun) -> float:
    """The private mariadbd stopped for longer than the heartbeat window. Once a node's
    rounds have missed the database for a window it must hold every agent command and
    report not ready: from then until the database returns, the simulator counts the
    commands it receives and every node's ``/health`` is sampled (``run.hold``)."""
    assert run.sut.servers is not None
    await run.sut.servers.db.stop()
    stopped_at = time.monotonic()
    # A node notices at its next round (up to one interval), then holds after a window;
    # one more second for a command already on its way when the hold began.
    hold_from = stopped_at + run.heartbeat_window + run.config.heartbeat_interval + 1.0
    await asyncio.sleep(hold_from - time.monotonic())
    commands_before = await run.sim_commands()
    ready, samples = 0, 0
    hold_until = hold_from + max(run.fault_seconds, run.heartbeat_window)
    while time.monotonic() < hold_until:
        for ok in await run.health_samples():
            samples += 1
            ready += ok
        await asyncio.sleep(0.25)
    sent = _difference(await run.sim_commands(), commands_before)
    run.hold = {
        "outageS": round(time.monotonic() - stopped_at, 1),
        "heldS": round(time.monotonic() - hold_from, 1),
        "agentCommands": sent,
        "healthSamples": samples,
        "readyAnswers": ready,
    }
    await run.sut.servers.db.start()
    run.hold["heldCommands"] = await run.held_commands()
    if sent:
        run.fault_violations.append(f"agent commands sent without the database: {sent}")
    if ready or not samples:
        run.fault_violations.append(
            f"/health said ready {ready} times of {samples} without the database"
        )
    return time.monotonic()


def _difference(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    return {k: n - before.get(k, 0) for k, n in sorted(after.items()) if n > before.get(k, 0)}


def _takeover_bound(run: ChaosRun) -> float:
    # Two detection periods, plus one ping round for the new owner to reach the hosts.
    return 2 * run.heartbeat_window + run.ping_interval


def _restart_bound(run: ChaosRun) -> float:
    return 2 * run.heartbeat_window + run.ping_interval + run.node_start_s


FAULTS = {
    f.name: f
    for f in (
        Fault("none", _none),
        Fault("agent-callbacks", _agent_callbacks),
        Fault("agent-crash", _agent_crash),
        Fault("node-restart", _node_restart, bound=_restart_bound),
        Fault(
            "node-kill", _node_kill, needs_cluster=True, bound=_takeover_bound, stops_a_node=True
        ),
        Fault(
            "node-drain", _node_drain, needs_cluster=True, bound=_takeover_bound, stops_a_node=True
        ),
        Fault("broker-outage", _broker_outage, needs_cluster=True),
        Fault("db-outage", _db_outage, needs_cluster=True),
        Fault("db-outage-long", _db_outage_long, needs_cluster=True),
    )
}
