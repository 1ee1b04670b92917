"""Walk, replay, and keep a shrunk failure as a regression.

``walk``: one node, Hypothesis' state machine for ``steps`` steps in examples of
``example_steps`` (the cloud emptied between examples), every step in the action log. On
the first failure Hypothesis shrinks the example to a minimal one (each attempt is logged
too), and the minimal log is written to ``save_dir``.

(``replay`` re-runs a log: ``simulator.walker.replay``.)
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import hypothesis.core as hypothesis_core
from hypothesis import HealthCheck, Phase, Verbosity, settings
from hypothesis.stateful import run_state_machine_as_test

from simulator.walker.actionlog import LogWriter, write_minimal
from simulator.walker.cloud import Cloud, WalkConfig, WalkError
from simulator.walker.machine import Session, WalkMachine
from simulator.walker.reduce import reduce
from simulator.walker.steps import Step


@dataclass
class WalkResult:
    seed: int
    steps: int
    checks: int
    examples: int
    seconds: float
    log: Path
    failure: str | None = None
    minimal: list[Step] = field(default_factory=list)
    saved: Path | None = None

    def to_json(self) -> dict[str, object]:
        return {
            "seed": self.seed,
            "steps": self.steps,
            "invariantChecks": self.checks,
            "examples": self.examples,
            "seconds": round(self.seconds, 2),
            "stepsPerS": round(self.steps / self.seconds, 2) if self.seconds else None,
            "log": str(self.log),
            "failure": self.failure,
            "minimalSteps": [s.to_json() for s in self.minimal],
            "saved": str(self.saved) if self.saved else None,
        }


def _hypothesis_settings(examples: int, example_steps: int) -> settings:
    return settings(
        max_examples=examples,
        stateful_step_count=example_steps,
        deadline=None,
        database=None,  # a walk is reproduced from its seed and its log, not a cache
        suppress_health_check=list(HealthCheck),
        phases=(Phase.generate, Phase.shrink),
        report_multiple_bugs=False,
        print_blob=False,
        verbosity=Verbosity.quiet,  # the walk's result and its log say what failed
    )


def _run_machine(session: Session, seed: int, examples: int, example_steps: int) -> str | None:
    """Hypothesis' run, in a worker thread; the failure it ended with (None: none)."""
    WalkMachine.session = session

    try:
        _seeded(seed, examples, example_steps)
    except WalkError as exc:
        return str(exc)
    except Exception as exc:  # Flaky and the like: the walk failed, not the runner
        return f"{type(exc).__name__}: {exc}"
    finally:
        WalkMachine.session = None
    return None


def _seeded(seed: int, examples: int, example_steps: int) -> None:
    """Run the machine with Hypothesis' seed forced to ``seed``, for this run only.

    ``run_state_machine_as_test`` takes no seed, and ``@seed`` applies to ``@given`` tests
    only; the module global that pytest's ``--hypothesis-seed`` sets is the one way in."""
    previous = hypothesis_core.global_force_seed
    hypothesis_core.global_force_seed = seed  # type: ignore[assignment] # typed as None only
    try:
        run_state_machine_as_test(
            WalkMachine, settings=_hypothesis_settings(examples, example_steps)
        )
    finally:
        hypothesis_core.global_force_seed = previous


async def walk(
    config: WalkConfig,
    *,
    seed: int,
    steps: int,
    log_path: Path,
    example_steps: int = 50,
    save_dir: Path | None = None,
    reduce_replays: int = 0,
    shrink_seconds: float = 60.0,
) -> WalkResult:
    """A seeded walk of about ``steps`` steps; see the module's docstring.
    ``reduce_replays`` > 0: shrink the failing example further over its log
    (``simulator.walker.reduce``), with at most that many replays on fresh nodes.
    ``shrink_seconds``: how long Hypothesis may shrink after the first failure."""
    started = time.monotonic()
    writer = await asyncio.to_thread(LogWriter, log_path, seed, config)
    try:
        async with Cloud(config) as cloud:
            await cloud.reset()
            session = Session(cloud, asyncio.get_running_loop(), writer, shrink_seconds)
            examples = max(1, math.ceil(steps / example_steps))
            failure = await asyncio.to_thread(
                _run_machine, session, seed, examples, min(example_steps, steps)
            )
    finally:
        await asyncio.to_thread(writer.close)
    stats = session.stats
    result = WalkResult(
        seed=seed,
        steps=stats.steps,
        checks=stats.checks,
        examples=stats.examples,
        seconds=time.monotonic() - started,
        log=log_path,
        failure=failure,
    )
    if stats.failures:
        result.minimal, text = stats.failures[-1]
        if reduce_replays > 0:
            result.minimal, text = await reduce(
                config, result.minimal, text, max_replays=reduce_replays
            )
        result.failure = text
        if save_dir is not None:
            result.saved = await asyncio.to_thread(
                save_regression, save_dir, seed, config, result.minimal, text
            )
    return result


def save_regression(
    save_dir: Path, seed: int | None, config: WalkConfig, steps: list[Step], failure: str
) -> Path:
    """The minimal log, named by its content, for ``tests/regressions/test_walks.py``."""
    digest = hashlib.sha256(
        json.dumps([s.to_json() for s in steps], sort_keys=True).encode()
    ).hexdigest()[:10]
    path = save_dir / f"walk_seed{seed}_{digest}.jsonl"
    write_minimal(path, seed, config, steps, failure)
    return path
