"""Memory of 100k jobs waiting in work queues, and dispatch rate once released.

Each phase runs in a fresh interpreter (started by this script) so freed memory of one
phase cannot hide the cost of the next:

* ``baseline``: N bare tasks parked on one shared future, then each awaits a no-op.
* ``queues``: one gated job holds each of S signatures; N more jobs wait behind them.
  Extra RSS = queues delta - baseline delta (both phases park N tasks).

Prints one JSON line. Usage: ``python benchmarks/bench_workqueue.py [--jobs N] [--sigs S]``
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import subprocess
import sys
import time
from pathlib import Path

from zstackpy.core.workqueue import QueueKey, WorkQueues


def rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


async def noop() -> None:
    return None


async def spin() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def phase_baseline(jobs: int) -> dict[str, float]:
    loop = asyncio.get_running_loop()
    gate: asyncio.Future[None] = loop.create_future()
    done = asyncio.Event()
    left = jobs

    async def parked() -> None:
        nonlocal left
        await gate
        await noop()
        left -= 1
        if left == 0:
            done.set()

    gc.collect()
    before = rss_bytes()
    tasks = [asyncio.create_task(parked()) for _ in range(jobs)]
    await spin()
    gc.collect()
    parked_rss = rss_bytes() - before
    t0 = time.perf_counter()
    gate.set_result(None)
    await done.wait()
    elapsed = time.perf_counter() - t0
    del tasks
    return {"rss_delta": parked_rss, "seconds": elapsed}


async def phase_queues(jobs: int, sigs: int) -> dict[str, float]:
    loop = asyncio.get_running_loop()
    gate: asyncio.Future[None] = loop.create_future()
    queues = WorkQueues()
    keys = [QueueKey("vm", f"{i:032x}") for i in range(sigs)]
    done = asyncio.Event()
    left = jobs

    async def hold() -> None:
        await gate

    async def job(key: QueueKey) -> None:
        nonlocal left
        await queues.run(key, noop)
        left -= 1
        if left == 0:
            done.set()

    holders = [asyncio.create_task(queues.run(k, hold)) for k in keys]
    await spin()
    gc.collect()
    before = rss_bytes()
    tasks = [asyncio.create_task(job(keys[i % sigs])) for i in range(jobs)]
    await spin()
    gc.collect()
    parked_rss = rss_bytes() - before
    waiting = sum(queues.depth(k) for k in keys)
    assert waiting == jobs, waiting
    t0 = time.perf_counter()
    gate.set_result(None)
    await done.wait()
    elapsed = time.perf_counter() - t0
    await asyncio.gather(*holders)
    assert len(queues) == 0
    stats = queues.snapshot()["vm"]
    del tasks
    return {
        "rss_delta": parked_rss,
        "seconds": elapsed,
        "completed": stats.completed,
        "max_wait_s": stats.max_wait_s,
    }


def child(phase: str, jobs: int, sigs: int) -> dict[str, float]:
    if phase == "baseline":
        return asyncio.run(phase_baseline(jobs))
    return asyncio.run(phase_queues(jobs, sigs))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--sigs", type=int, default=1_000)
    parser.add_argument("--phase", choices=["baseline", "queues"])
    args = parser.parse_args()
    if args.phase:
        print(json.dumps(child(args.phase, args.jobs, args.sigs)))
        return
    results = {}
    for phase in ("baseline", "queues"):
        out = subprocess.run(
            [
                sys.executable,
                __file__,
                "--phase",
                phase,
                f"--jobs={args.jobs}",
                f"--sigs={args.sigs}",
            ],
            check=True,
            capture_output=True,
            text=True,
        )
        results[phase] = json.loads(out.stdout)
    base, queued = results["baseline"], results["queues"]
    extra = queued["rss_delta"] - base["rss_delta"]
    mib = 1024 * 1024
    print(
        json.dumps(
            {
                "bench": "workqueue",
                "python": sys.version.split()[0],
                "jobs_waiting": args.jobs,
                "signatures": args.sigs,
                "baseline_parked_tasks_rss_mib": round(base["rss_delta"] / mib, 1),
                "queued_jobs_rss_mib": round(queued["rss_delta"] / mib, 1),
                "extra_rss_mib": round(extra / mib, 1),
                "extra_bytes_per_waiting_job": round(extra / args.jobs),
                "goal_extra_rss_mib_below": 300,
                "ok": extra < 300 * mib,
                "dispatch_jobs_per_s": round(args.jobs / queued["seconds"]),
                "baseline_tasks_per_s": round(args.jobs / base["seconds"]),
                "max_wait_s": round(queued["max_wait_s"], 3),
            }
        )
    )


if __name__ == "__main__":
    main()
