"""Replay: one example of an action log, step by step, on a fresh node, every invariant
checked after each step and once more after the cloud is emptied (as a walk does after
each example); the first failure is the answer."""

from __future__ import annotations

import time
from dataclasses import dataclass

from simulator.walker.actionlog import Log
from simulator.walker.actions import do
from simulator.walker.cloud import Cloud, WalkConfig, WalkError
from simulator.walker.invariants import check


@dataclass
class ReplayResult:
    steps: int
    failure: str | None
    seconds: float


async def replay(
    log: Log, example: int | None = None, config: WalkConfig | None = None
) -> ReplayResult:
    """Re-run one example of ``log`` (default: its last failing one, else its last) on a
    fresh node; ``config`` overrides the log's (e.g. without a plugin)."""
    if example is None:
        example = log.last_failure if log.last_failure is not None else max(log.steps, default=0)
    steps = log.steps.get(example, [])
    started = time.monotonic()
    done = 0
    async with Cloud(config or log.config) as cloud:
        await cloud.reset()
        for step in steps:
            done += 1
            try:
                await do(cloud, step)
                problems = await check(cloud)
            except WalkError as exc:
                problems = [str(exc)]
            if problems:
                return ReplayResult(done, "; ".join(problems), time.monotonic() - started)
        # As the walk does after each example: expunge everything, and nothing may be left.
        try:
            await cloud.reset()
            problems = await check(cloud)
        except WalkError as exc:
            problems = [str(exc)]
        if problems:
            text = "after the walk, with every VM expunged: " + "; ".join(problems)
            return ReplayResult(done, text, time.monotonic() - started)
    return ReplayResult(done, None, time.monotonic() - started)
