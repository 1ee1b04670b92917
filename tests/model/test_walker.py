"""The model-based walker on a real embedded node: a short walk with faults finds the
node in agreement with the model at every step, and a bug seeded by a test plugin is
found, shrunk to a few steps, and replayed from its log (and not without the plugin)."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path

import pytest

from simulator.walker.actionlog import Log
from simulator.walker.cloud import WalkConfig
from simulator.walker.invariants import CHECKS
from simulator.walker.replay import replay
from simulator.walker.runner import walk
from tests.support.walker_bug import CODE

BUG = "tests.support.walker_bug:plugin"


@pytest.mark.timeout(180)
async def test_a_short_walk_with_faults_keeps_every_invariant(tmp_path: Path) -> None:
    log_path = tmp_path / "walk.jsonl"
    result = await walk(
        WalkConfig(), seed=2026, steps=300, log_path=log_path, save_dir=tmp_path, shrink_seconds=5
    )

    assert result.failure is None, (result.failure, [str(s) for s in result.minimal])
    assert result.steps >= 250
    assert result.checks == len(CHECKS) * result.steps
    log = await asyncio.to_thread(Log.read, log_path)
    assert log.seed == 2026
    assert sum(len(steps) for steps in log.steps.values()) == result.steps
    ops = {step.op for steps in log.steps.values() for step in steps}
    # VM operations, concurrency and faults were exercised. (Which faults exactly depends
    # on how the concurrent steps' races went: the model's state steers later draws.)
    assert {"create", "concurrent"} <= ops
    assert ops & {"agent-error", "lost-callback", "host-outage"}
    assert len(ops & {"start", "stop", "reboot", "pause", "resume", "destroy"}) >= 4
    # and the resources beyond VMs: snapshots, images, security groups, VIPs, EIPs,
    # port-forwarding rules and load balancers
    for kind in ("snapshot-", "image-", "sg-", "vip-", "eip-", "pf-", "lb-"):
        assert any(op.startswith(kind) for op in ops), (kind, sorted(ops))


@pytest.mark.timeout(120)
async def test_a_walk_on_two_nodes_keeps_every_invariant(tmp_path: Path) -> None:
    config = WalkConfig(nodes=2, faults=("agent-error", "lost-callback"))
    result = await walk(
        config, seed=12, steps=100, log_path=tmp_path / "walk.jsonl", save_dir=tmp_path
    )

    assert result.failure is None, (result.failure, [str(s) for s in result.minimal])
    assert result.steps >= 80
    log = await asyncio.to_thread(Log.read, tmp_path / "walk.jsonl")
    assert log.config.nodes == 2


@pytest.mark.timeout(240)
async def test_a_seeded_bug_is_found_shrunk_and_replayed(tmp_path: Path) -> None:
    # VM operations and data volumes only: the bug is in a VM's start, and the other
    # resources' steps would make stop-then-start rarer in 300 steps.
    config = WalkConfig(plugins=(BUG,), faults=("agent-error",), resources=())
    result = await walk(
        config,
        seed=13,
        steps=300,
        example_steps=30,
        log_path=tmp_path / "walk.jsonl",
        save_dir=tmp_path / "regressions",
        shrink_seconds=20,
        reduce_replays=20,
    )

    assert result.failure is not None
    assert CODE in result.failure
    # At its smallest: make a VM, stop it, start it (plus VMs the indexes keep; a stop or
    # start may come inside a concurrent step).
    shown = [str(s) for s in result.minimal]
    assert 2 <= len(result.minimal) <= 5, shown
    last = result.minimal[-1]
    assert last.op == "start" or "start" in last.ops, shown
    assert result.saved is not None
    saved = await asyncio.to_thread(Log.read, result.saved)
    assert saved.config.plugins == (BUG,)
    assert saved.steps[0] == result.minimal

    again = await replay(saved)
    assert again.failure is not None
    assert CODE in again.failure
    assert again.steps == len(result.minimal)

    clean = await replay(saved, config=dataclasses.replace(saved.config, plugins=()))
    assert clean.failure is None
