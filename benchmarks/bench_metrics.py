"""What the metrics hooks cost: the bus observer's ``handling`` + ``handled`` pair per
message, the flow-chain and agent-call hooks per call, each called directly in a loop
(nanoseconds; the precise figure), and in-process CloudBus round trips with no observer,
with the metrics observer and the slow-message log off, and with both (the default), in
alternating rounds (CPU microseconds per round trip, ``time.process_time``; on a shared
machine this is noisier than the difference it looks for).

With ``--vm-rounds R``: an in-process embedded node (in-process simulator) creates
``--vms-per-round`` VMs over REST per round, with the hooks installed and removed in
alternate rounds, R rounds each; CPU milliseconds of the whole process per VM (driver and
simulator included: they cost the same either way), so the machine's other load hits both
sides alike.

Prints one JSON line. Usage: ``python benchmarks/bench_metrics.py [--seconds S] [--rounds N]``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
from pydantic import SecretStr

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench_bus import BenchEchoMsg, echo
from prometheus_client import CollectorRegistry

from simulator.stress.datacenter import add_hosts, build_base, vm_body
from simulator.stress.rest import ApiClient, Driver
from zstackpy.core.bus import CloudBus, Envelope, Kind, Reply
from zstackpy.core.bus.inproc import InProcBroker, InProcTransport
from zstackpy.core.config import GlobalConfigs
from zstackpy.core.db import upgrade
from zstackpy.core.ids import new_uuid
from zstackpy.core.kernel_configs import SLOW_MESSAGE_THRESHOLD
from zstackpy.core.ring import Ring
from zstackpy.core.settings import NodeSettings
from zstackpy.node.metrics.messages import MessageMetrics
from zstackpy.node.metrics.operations import AgentMetrics, ChainMetrics
from zstackpy.node.metrics.slowlog import SlowMessageLog
from zstackpy.node.node import ManagementNode

IN_FLIGHT = 16


def observers() -> dict[str, MessageMetrics | None]:
    configs = GlobalConfigs()
    configs.define(SLOW_MESSAGE_THRESHOLD)
    with_log = MessageMetrics(CollectorRegistry(), SlowMessageLog(configs))
    quiet = GlobalConfigs()
    quiet.define(SLOW_MESSAGE_THRESHOLD)
    no_log = MessageMetrics(CollectorRegistry(), SlowMessageLog(quiet))
    no_log.slow_log.threshold_s = 0.0
    return {"none": None, "metrics": no_log, "metrics+slow_log": with_log}


async def cpu_us_per_call(bus: CloudBus, seconds: float) -> float:
    msg = BenchEchoMsg(payload="x" * 256)
    done = 0
    deadline = time.perf_counter() + seconds

    async def caller() -> None:
        nonlocal done
        while time.perf_counter() < deadline:
            await bus.call(msg)
            done += 1

    cpu0 = time.process_time()
    await asyncio.gather(*(caller() for _ in range(IN_FLIGHT)))
    return (time.process_time() - cpu0) / done * 1e6


async def observer_ns(observer: MessageMetrics, n: int = 200_000) -> float:
    """One handled message's hook calls, as the bus makes them (in a task of its own)."""
    msg = BenchEchoMsg(payload="x")
    env = Envelope(
        kind=Kind.MESSAGE,
        type_name=msg.wire_type(),
        message_id="0" * 32,
        source_node="n",
        body=msg,
        service=BenchEchoMsg.service,
        reply_to="n",
    )
    reply = Reply()

    started = time.perf_counter()
    for _ in range(n):
        observer.handled(observer.handling(env, msg), env, msg, reply)
    return (time.perf_counter() - started) / n * 1e9


def hook_ns(hook: Any, args: tuple[Any, ...], n: int = 200_000) -> float:
    started = time.perf_counter()
    for _ in range(n):
        hook(*args)
    return (time.perf_counter() - started) / n * 1e9


async def run(args: argparse.Namespace) -> dict[str, Any]:
    node = new_uuid()
    bus = CloudBus(node, InProcTransport(), Ring([node]))
    await bus.register(BenchEchoMsg.service, echo)
    await bus.start()
    kinds = observers()
    samples: dict[str, list[float]] = {name: [] for name in kinds}
    try:
        await cpu_us_per_call(bus, 0.5)  # warm-up
        for _ in range(args.rounds):
            for name, observer in kinds.items():
                bus.observer = observer
                samples[name].append(await cpu_us_per_call(bus, args.seconds))
    finally:
        await bus.stop()
    median = {name: statistics.median(values) for name, values in samples.items()}
    return {
        "bench": "metrics_hooks",
        "rounds": args.rounds,
        "cpu_us_per_local_round_trip": {k: round(v, 2) for k, v in median.items()},
        "hook_us_per_message": {
            k: round(v - median["none"], 2) for k, v in median.items() if k != "none"
        },
        "bus_observer_ns": {
            name: round(await observer_ns(observer)) for name, observer in kinds.items() if observer
        },
        "chain_hook_ns": round(
            hook_ns(ChainMetrics(CollectorRegistry()), ("vm-create", 0.1, True))
        ),
        "agent_hook_ns": round(
            hook_ns(AgentMetrics(CollectorRegistry()), ("/vm/start", 0.01, None))
        ),
    }


async def vm_rounds(rounds: int, per_round: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-metrics-") as name:
        tmp = Path(name)
        url = f"sqlite+aiosqlite:///{tmp / 'z.db'}"
        await upgrade(url)
        settings = NodeSettings(
            data_dir=tmp,
            db_url=url,
            http_port=0,
            bus_url=None,
            admin_password=SecretStr("bench-metrics-pw"),
            log_level="WARNING",
        )
        node = ManagementNode(settings, broker=InProcBroker())
        await node.start()
        ctx = node.context
        hooks = (ctx.bus.observer, ctx.flows.observer, ctx.agents.observer)
        samples: dict[str, list[float]] = {"off": [], "on": []}
        try:
            assert node.http is not None
            async with aiohttp.ClientSession() as http:
                admin = ApiClient(f"http://127.0.0.1:{node.http.port}", http)
                await admin.login("admin", "bench-metrics-pw")
                driver = Driver([admin], 60)
                total = rounds * 2 * per_round + 20
                dc = await build_base(driver, admin, "bm", total)
                await add_hosts(
                    driver, dc["cluster"]["uuid"], range(total // 200 + 1), prefix="bm", parallel=5
                )

                async def create(tag: str) -> float:
                    cpu0 = time.process_time()
                    answers = await asyncio.gather(
                        *(
                            driver.job(admin, "POST", "/vm-instances", vm_body(dc, f"{tag}-{i}"))
                            for i in range(per_round)
                        )
                    )
                    failed = [a.body for a in answers if a.status != 200]
                    if failed:
                        raise RuntimeError(f"creates failed: {failed[0]}")
                    return (time.process_time() - cpu0) / per_round * 1000

                await create("warm")
                for r in range(rounds):
                    for mode in ("off", "on") if r % 2 == 0 else ("on", "off"):
                        installed = hooks if mode == "on" else (None, None, None)
                        ctx.bus.observer, ctx.flows.observer, ctx.agents.observer = installed
                        samples[mode].append(await create(f"{mode}{r}"))
                await driver.close()
        finally:
            await node.stop()
    off, on = statistics.median(samples["off"]), statistics.median(samples["on"])
    return {
        "vms_per_round": per_round,
        "rounds_each": rounds,
        "process_cpu_ms_per_vm": {"off": samples["off"], "on": samples["on"]},
        "median_off_ms": round(off, 2),
        "median_on_ms": round(on, 2),
        "difference_ms": round(on - off, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="per round and kind")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--vm-rounds", type=int, default=0, help="VM rounds per side (0: none)")
    parser.add_argument("--vms-per-round", type=int, default=100)
    args = parser.parse_args()
    result = asyncio.run(run(args))
    if args.vm_rounds:
        result["vm_create"] = asyncio.run(vm_rounds(args.vm_rounds, args.vms_per_round))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
