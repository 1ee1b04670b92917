"""What the metrics hooks cost: the bus observer's ``handling`` + ``handled`` pair per
message, the flow-chain and agent-call hooks per call, each called directly in a loop
(nanoseconds; the precise figure), and in-process CloudBus round trips with no observer,
with the metrics observer and the slow-message log off, and with both (the default), in
alternating rounds (CPU microseconds per round trip, ``time.process_time``; on a shared
machine this is noisier than the difference it looks for).

Prints one JSON line. Usage: ``python benchmarks/bench_metrics.py [--seconds S] [--rounds N]``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench_bus import BenchEchoMsg, echo
from prometheus_client import CollectorRegistry

from zstackpy.core.bus import CloudBus, Envelope, Kind, Reply
from zstackpy.core.bus.inproc import InProcTransport
from zstackpy.core.config import GlobalConfigs
from zstackpy.core.ids import new_uuid
from zstackpy.core.kernel_configs import SLOW_MESSAGE_THRESHOLD
from zstackpy.core.ring import Ring
from zstackpy.node.metrics.messages import MessageMetrics
from zstackpy.node.metrics.operations import AgentMetrics, ChainMetrics
from zstackpy.node.metrics.slowlog import SlowMessageLog

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


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="per round and kind")
    parser.add_argument("--rounds", type=int, default=5)
    print(json.dumps(asyncio.run(run(parser.parse_args()))))


if __name__ == "__main__":
    main()
