"""The long model-based walk: ``simulator/walker`` for thousands of steps over several
seeds, each seed on a fresh embedded node; prints one JSON object with steps/s,
invariant checks and the failures found (each with its shrunk log).

Usage: ``python benchmarks/bench_walk.py [--seeds 1 2 3] [--steps 2000] [--out DIR]``
(``--hours H`` repeats seeds from the first until that much time has passed).
Exit status 1 when any walk failed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import time
from pathlib import Path

from simulator.walker.cloud import WalkConfig
from simulator.walker.runner import WalkResult, walk


async def _run(args: argparse.Namespace) -> list[WalkResult]:
    results: list[WalkResult] = []
    started = time.monotonic()
    seeds = list(args.seeds)
    i = 0
    while i < len(seeds) or (args.hours and time.monotonic() - started < args.hours * 3600):
        seed = seeds[i] if i < len(seeds) else seeds[-1] + i - len(seeds) + 1
        i += 1
        result = await walk(
            WalkConfig(hosts=args.hosts, nodes=args.nodes),
            seed=seed,
            steps=args.steps,
            log_path=args.out / f"walk_seed{seed}.jsonl",
            example_steps=args.example_steps,
            save_dir=args.out / "shrunk",
            reduce_replays=args.reduce,
        )
        results.append(result)
    return results


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--example-steps", type=int, default=100)
    parser.add_argument("--hosts", type=int, default=3)
    parser.add_argument("--hours", type=float, default=0.0)
    parser.add_argument("--nodes", type=int, default=1, help="more: a cluster in one process")
    parser.add_argument("--out", type=Path, default=Path("walk-bench"))
    parser.add_argument("--reduce", type=int, default=60, help="log-level shrink replays")
    args = parser.parse_args()
    logging.basicConfig(level=logging.CRITICAL)
    started = time.monotonic()
    results = asyncio.run(_run(args))
    seconds = time.monotonic() - started
    steps = sum(r.steps for r in results)
    summary = {
        "seeds": [r.seed for r in results],
        "steps": steps,
        "seconds": round(seconds, 1),
        "stepsPerS": round(steps / seconds, 2) if seconds else None,
        "invariantChecks": sum(r.checks for r in results),
        "examples": sum(r.examples for r in results),
        "failuresFound": sum(1 for r in results if r.failure),
        "walks": [r.to_json() for r in results],
    }
    print(json.dumps(summary, indent=2))
    return 1 if summary["failuresFound"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
