"""Per-flow overhead of a chain run: 10 no-op flows, many runs, beside direct awaits.

Baseline: await the same 10 ``run`` coroutines on pre-built flows. Chain: a fresh
instance per flow per run (factory), a trace entry per flow, rollback bookkeeping.
Prints one JSON line. Usage: ``python benchmarks/bench_flow.py [--runs N]``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from zstackpy.core.flow import Flow, FlowChain, FlowRegistry

FLOWS = 10


@dataclass
class Ctx:
    count: int = 0


class Noop(Flow[Ctx]):
    async def run(self, ctx: Ctx) -> None:
        ctx.count += 1


async def baseline(runs: int) -> float:
    flows = [Noop() for _ in range(FLOWS)]
    ctx = Ctx()
    t0 = time.perf_counter()
    for _ in range(runs):
        for flow in flows:
            await flow.run(ctx)
    elapsed = time.perf_counter() - t0
    assert ctx.count == runs * FLOWS
    return elapsed


async def chain_runs(runs: int, chain: FlowChain) -> float:
    ctx = Ctx()
    t0 = time.perf_counter()
    for _ in range(runs):
        await chain.run(ctx)
    elapsed = time.perf_counter() - t0
    assert ctx.count == runs * FLOWS
    return elapsed


async def registry_runs(runs: int, registry: FlowRegistry) -> float:
    ctx = Ctx()
    t0 = time.perf_counter()
    for _ in range(runs):
        await registry.run("bench", ctx)
    return time.perf_counter() - t0


def build() -> tuple[FlowChain, FlowRegistry]:
    """A hand-built chain and the same chain loaded from YAML (sync: start-up work)."""
    ids = [f"noop-{i}" for i in range(FLOWS)]
    chain = FlowChain("bench", [(i, Noop) for i in ids])
    registry = FlowRegistry()
    for flow_id in ids:
        registry.register(flow_id, Noop)
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "bench.yaml").write_text(f"chain: bench\nsteps: [{', '.join(ids)}]\n")
        registry.load_dir(Path(tmp))
    registry.validate()
    return chain, registry


async def bench(runs: int, chain: FlowChain, registry: FlowRegistry) -> dict[str, object]:
    await chain_runs(100, chain)  # warm-up
    base = min([await baseline(runs) for _ in range(3)])
    direct = min([await chain_runs(runs, chain) for _ in range(3)])
    via_registry = min([await registry_runs(runs, registry) for _ in range(3)])
    calls = runs * FLOWS
    return {
        "bench": "flow",
        "python": sys.version.split()[0],
        "flows_per_chain": FLOWS,
        "runs": runs,
        "baseline_us_per_flow": round(base / calls * 1e6, 3),
        "chain_us_per_flow": round(direct / calls * 1e6, 3),
        "overhead_us_per_flow": round((direct - base) / calls * 1e6, 3),
        "chain_us_per_run": round(direct / runs * 1e6, 2),
        "registry_run_us_per_run": round(via_registry / runs * 1e6, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=10_000)
    args = parser.parse_args()
    chain, registry = build()
    print(json.dumps(asyncio.run(bench(args.runs, chain, registry))))


if __name__ == "__main__":
    main()
