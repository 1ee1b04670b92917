"""``python -m simulator.chaos``: run faults against a fresh system, print the table.

Each fault gets a system of its own (child processes in a temporary directory; in cluster
mode its own MariaDB and RabbitMQ). Exit status 0 when every invariant held in every run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import shutil
import signal
import sys
import tempfile
from collections.abc import Coroutine
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

from simulator.chaos.cluster import Servers
from simulator.chaos.faults import FAULTS
from simulator.chaos.report import table
from simulator.chaos.run import ChaosRun, Config, Result, private_servers


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m simulator.chaos", description=__doc__)
    parser.add_argument(
        "--fault",
        action="append",
        choices=sorted(FAULTS),
        help="a fault to run (repeatable; default: every fault the mode allows)",
    )
    parser.add_argument("--nodes", type=int, default=1, help="management nodes (2+: cluster)")
    parser.add_argument("--hosts", type=int, default=4)
    parser.add_argument("--ops", type=int, default=60, help="operations in the workload")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--vm-pool", type=int, default=12, help="VMs kept for lifecycle ops")
    parser.add_argument("--fault-seconds", type=float, default=3.0, help="how long it lasts")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument(
        "--workdir",
        type=Path,
        help="keep logs here (default: a temp dir, whose logs are kept only for a run that "
        "went wrong: its path is printed)",
    )
    parser.add_argument("--json", type=Path, help="also write the results to this JSON file")
    return parser.parse_args(argv)


async def run_all(args: argparse.Namespace, base: Path) -> list[Result]:
    cluster = args.nodes > 1
    faults = args.fault or [n for n, f in FAULTS.items() if cluster or not f.needs_cluster]
    results = []
    async with AsyncExitStack() as stack:
        # One pair of private servers for every cluster run (each gets its own database
        # and vhost there): starting RabbitMQ costs seconds.
        shared = await stack.enter_async_context(private_servers(base)) if cluster else None
        for name in faults:
            results.append(await _one(args, base, name, shared))
    return results


async def _one(args: argparse.Namespace, base: Path, name: str, shared: Servers | None) -> Result:
    config = Config(
        fault=name,
        workdir=base / name,
        nodes=args.nodes,
        hosts=args.hosts,
        ops=args.ops,
        concurrency=args.concurrency,
        vm_pool=args.vm_pool,
        fault_seconds=args.fault_seconds,
        seed=args.seed,
    )
    print(f"chaos: {name} ...", file=sys.stderr, flush=True)
    return await ChaosRun(config, shared).run()


async def _stoppable(work: Coroutine[Any, Any, list[Result]]) -> list[Result]:
    """Run ``work``; SIGTERM or SIGINT cancel it, so the nodes, the simulator and the
    private servers it started are stopped on the way out, not orphaned."""
    task = asyncio.current_task()
    assert task is not None
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, task.cancel)
    return await work


def _keep_logs(base: Path) -> Path:
    """Copy every log of the runs (nodes, simulator, private servers) out of the temporary
    directory before it goes; the servers' data stays behind."""
    kept = Path(tempfile.mkdtemp(prefix="zstack-chaos-logs-"))
    for log in base.rglob("*.log"):
        target = kept / log.relative_to(base)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(log, target)
    return kept


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if args.workdir is not None:
        results = asyncio.run(_stoppable(run_all(args, args.workdir)))
    else:
        with tempfile.TemporaryDirectory(prefix="zstack-chaos-") as tmp:
            results = asyncio.run(_stoppable(run_all(args, Path(tmp))))
            if not all(r.verdict.holds for r in results):
                kept = _keep_logs(Path(tmp))
                print(f"chaos: a run went wrong; its logs are kept in {kept}", file=sys.stderr)
    print(table(results), flush=True)
    if args.json is not None:
        args.json.write_text(json.dumps([r.to_dict() for r in results], indent=1))
    return 0 if all(r.verdict.holds for r in results) else 1
