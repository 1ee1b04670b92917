"""The walker's command line.

    python -m simulator.walker walk --seed 7 --steps 300 --log walk.jsonl
    python -m simulator.walker replay walk.jsonl [--example N] [--without-plugins]

``walk`` prints one JSON object (steps, steps/s, invariant checks, the failure and its
minimal log) and exits 1 when it found a failure; ``replay`` prints what the re-run did
and exits 1 when the failure reproduced.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import logging
from pathlib import Path

from simulator.walker.actionlog import Log
from simulator.walker.cloud import RESOURCES, WalkConfig
from simulator.walker.replay import replay
from simulator.walker.runner import walk
from simulator.walker.steps import FAULT_KINDS

DEFAULT_SAVE_DIR = Path("tests/regressions/walks")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m simulator.walker")
    sub = parser.add_subparsers(dest="command", required=True)
    w = sub.add_parser("walk", help="a seeded random walk against the model")
    w.add_argument("--seed", type=int, default=0)
    w.add_argument("--steps", type=int, default=300)
    w.add_argument("--example-steps", type=int, default=50, help="steps per Hypothesis example")
    w.add_argument("--log", type=Path, default=Path("walk.jsonl"))
    w.add_argument("--hosts", type=int, default=2)
    w.add_argument("--nodes", type=int, default=1, help="more: a cluster in one process")
    w.add_argument("--ip-capacity", type=int, default=10, help="addresses in the L3's range")
    w.add_argument(
        "--faults",
        default=",".join(FAULT_KINDS),
        help=f"comma-separated, of {','.join(FAULT_KINDS)} (empty: none)",
    )
    w.add_argument(
        "--resources",
        default=",".join(RESOURCES),
        help=f"comma-separated, of {','.join(RESOURCES)}: what the walk acts on beside VMs "
        "and data volumes (empty: none)",
    )
    w.add_argument("--plugin", action="append", default=[], help="module:attribute, repeatable")
    w.add_argument(
        "--save-dir",
        type=Path,
        default=DEFAULT_SAVE_DIR,
        help="where a shrunk failing log is saved (a regression test replays it)",
    )
    w.add_argument(
        "--reduce",
        type=int,
        default=60,
        help="after Hypothesis' shrink, at most this many replays deleting steps (0: none)",
    )
    w.add_argument("--shrink-seconds", type=float, default=60.0, help="Hypothesis' shrink budget")
    r = sub.add_parser("replay", help="re-run a log's example on a fresh node")
    r.add_argument("log", type=Path)
    r.add_argument("--example", type=int, default=None, help="default: the last failing one")
    r.add_argument("--without-plugins", action="store_true", help="drop the log's plugins")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    # The node logs the faults the walk injects; the walk's own verdict is the output.
    logging.basicConfig(level=logging.CRITICAL)
    if args.command == "walk":
        faults = tuple(f for f in args.faults.split(",") if f)
        unknown = set(faults) - set(FAULT_KINDS)
        if unknown:
            raise SystemExit(f"unknown fault kinds: {sorted(unknown)}")
        resources = tuple(r for r in args.resources.split(",") if r)
        if set(resources) - set(RESOURCES):
            raise SystemExit(f"unknown resources: {sorted(set(resources) - set(RESOURCES))}")
        config = WalkConfig(
            hosts=args.hosts,
            nodes=args.nodes,
            ip_capacity=args.ip_capacity,
            plugins=tuple(args.plugin),
            faults=faults,
            resources=resources,
        )
        result = asyncio.run(
            walk(
                config,
                seed=args.seed,
                steps=args.steps,
                log_path=args.log,
                example_steps=args.example_steps,
                save_dir=args.save_dir,
                reduce_replays=args.reduce,
                shrink_seconds=args.shrink_seconds,
            )
        )
        print(json.dumps(result.to_json(), indent=2))
        return 1 if result.failure else 0
    log = Log.read(args.log)
    without: WalkConfig | None = None
    if args.without_plugins:
        without = dataclasses.replace(log.config, plugins=())
    outcome = asyncio.run(replay(log, args.example, without))
    print(
        json.dumps(
            {
                "steps": outcome.steps,
                "seconds": round(outcome.seconds, 2),
                "failure": outcome.failure,
            },
            indent=2,
        )
    )
    return 1 if outcome.failure else 0
