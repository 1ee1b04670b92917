"""Every shrunk failing walk the walker saved (``tests/regressions/walks/*.jsonl``,
written by ``python -m simulator.walker walk``) replays on a fresh node without a
failure: each log is the reproducer of a bug that is fixed."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from simulator.walker.actionlog import Log
from simulator.walker.replay import replay

LOGS = sorted((Path(__file__).parent / "walks").glob("*.jsonl"))


@pytest.mark.parametrize("path", LOGS, ids=[p.stem for p in LOGS])
async def test_a_saved_walk_replays_clean(path: Path) -> None:
    log = await asyncio.to_thread(Log.read, path)
    outcome = await replay(log)
    assert outcome.failure is None, f"{path.name} at step {outcome.steps}: {outcome.failure}"
