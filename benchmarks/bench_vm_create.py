"""ZStack's published VM-creation table (1, 10, 100, 1,000, 10,000 VMs created at once and
the wall time of each) reproduced on simulated hosts through the REST API, beside the limit
implied by what one VM costs in bus messages, database writes and agent calls.

Phases, in this order, each in the same run:

1. bare rates on this machine: an in-process asyncio request/reply (bench_bus's local
   baseline), a request/reply written straight on aio-pika (bench_bus's bare pair, cluster
   mode only), a single-row INSERT + COMMIT loop (SQLAlchemy async, a throwaway table, the
   node's own engine settings) on SQLite and on MariaDB (cluster mode only), and a bare
   aiohttp POST + callback (bench_hosts's baseline).
2. per-VM counts: an in-process embedded node (in-process simulator) creates ``--sample``
   VMs over REST; bus messages (``bus.stats``), INSERT/UPDATE/DELETE statements (a
   ``before_cursor_execute`` listener on the node's engine) and agent commands (the
   simulator's per-machine counters) are read before and after.
3. per mode, on real processes: ``python -m simulator`` plus ``zstackpy run`` (embedded:
   one node, SQLite, in-process bus; cluster: two nodes on a fresh MariaDB database and a
   fresh RabbitMQ vhost, requests alternating between them), a data center built over REST
   (NFS primary storage, SFTP backup storage with a 64 MiB image, NoVlan L2, an L3 on
   10.128.0.0/16 or wider, a 1 vCPU / 128 MiB offering, as many hosts as the largest run
   needs; built by ``simulator.stress.datacenter``, shared with the stress driver),
   ``host ping.interval`` 3600 and ``vm deletionPolicy`` Direct. One VM is created and
   destroyed first (it fills the NFS image cache). Then for each N: N CreateVmInstance
   calls started at once, each job followed to its end; wall time, VMs/s, failures, node
   CPU (utime+stime from /proc, 1.0 = one core). Between sizes the VMs are destroyed.

Learning that a job ended (``--wait``): ``events`` (the default) reads each node's event
stream (``GET /zstack/v1/events``) and fetches a job's answer with one GET when its
``jobCompleted`` event arrives, polling each job every 30 s, 10 polls/s at most, as the
safety net (and at the full polling pace if a stream ends); ``poll`` only polls. Polling:
open jobs are polled round robin, each at most every ``--poll-interval`` s and all together
at most ``--poll-rate`` times a second (with 10,000 jobs open, a 0.1 s interval would be
100,000 GETs/s: the polls, not the creates, would be measured). The nodes keep
their default bus timeout (30 s): every message a create sends inherits the job's deadline
(1,800 s), so a burst's queues are waited out, not timed out (``--call-timeout`` sets
``ZSTACK_CALL_TIMEOUT`` to compare).

Limit per mode = 1 / (msgs/bus_rate + writes/db_rate + agent_calls/http_rate), with the
in-process bus rate and SQLite for embedded, aio-pika and MariaDB for cluster;
``ratio`` = VMs/s of the largest N / limit (goal >= 0.5). Prints one JSON line; progress
goes to stderr.

Usage: ``python benchmarks/bench_vm_create.py [--mode embedded|cluster|both]
[--counts 1,10,100,1000,10000] [--parallel-http 200]`` (10,000 VMs take ~18 min embedded
on a 2-core machine; ``--counts 1,10,100,1000`` about 2 min per mode).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import sys
import tempfile
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from pydantic import SecretStr
from sqlalchemy import event, text

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench_bus import bare_pair, bench_local_bare, rate  # noqa: E402
from bench_hosts import baseline  # noqa: E402

from simulator.stress.datacenter import (  # noqa: E402
    IMAGE_SIZE,
    VM_MEMORY,
    Shape,
    add_hosts,
    build_base,
    create_vms,
    destroy_vms,
    set_global_config,
)
from simulator.stress.figures import parse_metrics, sample  # noqa: E402
from simulator.stress.job_events import POLL_PACE, JobEvents, pace  # noqa: E402
from simulator.stress.processes import CLK_TCK, cpu_seconds, free_port  # noqa: E402
from simulator.stress.rest import Answer, ApiClient, Driver  # noqa: E402
from tests.support.mariadb import fresh_mariadb  # noqa: E402
from tests.support.processes import (  # noqa: E402
    node_env,
    run_cli,
    simulator_process,
    start_node_process,
)
from tests.support.rabbit import fresh_vhost  # noqa: E402
from zstackpy.core.bus.inproc import InProcBroker  # noqa: E402
from zstackpy.core.db import upgrade  # noqa: E402
from zstackpy.core.db.engine import Database  # noqa: E402
from zstackpy.core.settings import NodeSettings  # noqa: E402
from zstackpy.node.node import ManagementNode  # noqa: E402

ADMIN_PASSWORD = "bench-vm-admin-pw"
GOAL = 0.5
# Seed 001 (The New Stack, 1 May 2015): ZStack creating VMs concurrently, wall seconds.
ZSTACK_PUBLISHED_S = {1: 0.51, 10: 1.55, 100: 11.33, 1000: 103.0, 10000: 23 * 60.0}


# ----- phase 1: bare rates ------------------------------------------------------------


async def bare_db_rate(url: str, seconds: float, in_flight: int = 16) -> float:
    """INSERT one row + COMMIT per call, ``in_flight`` at a time, on the node's engine."""
    db = Database(url)
    table = f"bench_vm_{free_port()}"
    try:
        async with db.engine.begin() as conn:
            await conn.execute(text(f"CREATE TABLE {table} (uuid VARCHAR(32) PRIMARY KEY)"))
        counter = iter(range(10**9))

        async def one() -> None:
            async with db.engine.begin() as conn:
                await conn.execute(
                    text(f"INSERT INTO {table} (uuid) VALUES (:u)"), {"u": f"{next(counter):032x}"}
                )

        await rate(one, in_flight, 0.3)  # warm-up: the pool's connections
        return await rate(one, in_flight, seconds)
    finally:
        async with db.engine.begin() as conn:
            await conn.execute(text(f"DROP TABLE {table}"))
        await db.close()


async def bare_rates(cluster: bool, seconds: float, tmp: Path) -> dict[str, float]:
    payload = "x" * 256
    rates: dict[str, float] = {
        "local_bus_rt_per_s": max((await bench_local_bare(payload, seconds)).values()),
        "sqlite_insert_commit_per_s": await bare_db_rate(
            f"sqlite+aiosqlite:///{tmp / 'bare.db'}", seconds
        ),
        "http_post_callback_per_s": await baseline(100, seconds),
    }
    if cluster:
        async with fresh_vhost("zstack-bench") as url, bare_pair(url, payload) as one:
            await rate(one, 16, 0.5)
            rates["amqp_rt_per_s"] = max([await rate(one, lv, seconds) for lv in (16, 256)])
        async with fresh_mariadb("zstack_bench_") as url:
            rates["mariadb_insert_commit_per_s"] = await bare_db_rate(url, seconds)
    return {name: round(value) for name, value in rates.items()}


# ----- the data center ----------------------------------------------------------------


async def build_datacenter(admin: ApiClient, max_vms: int) -> dict[str, Any]:
    """The shared data center (simulator.stress.datacenter), with enough hosts for
    ``max_vms`` + the warm-up VM."""
    await set_global_config(admin, "host", "ping.interval", 3600)
    await set_global_config(admin, "vm", "deletionPolicy", "Direct")
    driver = Driver([admin], 40)
    try:
        dc = await build_base(driver, admin, "bench", max_vms + 1, Shape(1, VM_MEMORY, IMAGE_SIZE))
        first = await add_hosts(driver, dc["cluster"]["uuid"], range(1), prefix="bench", parallel=1)
        inventory = _host(first[0])
        per_host = min(
            inventory["availableCpuCapacity"], inventory["availableMemoryCapacity"] // VM_MEMORY
        )
        hosts = math.ceil((max_vms + 1) / per_host)
        rest = await add_hosts(
            driver, dc["cluster"]["uuid"], range(1, hosts), prefix="bench", parallel=20
        )
    finally:
        await driver.close()
    dc["hosts"] = [inventory, *(_host(a) for a in rest)]
    return dc


def _host(answer: Answer) -> dict[str, Any]:
    if answer.status != 200:
        raise RuntimeError(f"AddKVMHost failed: {answer.body}")
    inventory: dict[str, Any] = answer.body["inventory"]
    return inventory


# ----- phase 2: per-VM counts on an in-process node ------------------------------------


def agent_commands(node: ManagementNode) -> int:
    assert node.simulator is not None
    return sum(sum((m.commands or {}).values()) for m in node.simulator.machines.values())


async def per_vm_counts(sample: int, tmp: Path) -> dict[str, float]:
    url = f"sqlite+aiosqlite:///{tmp / 'counts.db'}"
    await upgrade(url)
    settings = NodeSettings(
        data_dir=tmp,
        db_url=url,
        http_port=0,
        bus_url=None,
        admin_password=SecretStr(ADMIN_PASSWORD),
        log_level="WARNING",
    )
    node = ManagementNode(settings, broker=InProcBroker())
    await node.start()
    statements = writes = commits = 0

    def on_statement(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        nonlocal statements, writes
        statements += 1
        writes += statement.lstrip()[:6].upper() in ("INSERT", "UPDATE", "DELETE")

    def on_commit(_conn: Any) -> None:
        nonlocal commits
        commits += 1

    try:
        assert node.http is not None
        async with aiohttp.ClientSession() as http:
            admin = ApiClient(f"http://127.0.0.1:{node.http.port}", http)
            await admin.login("admin", ADMIN_PASSWORD)
            dc = await build_datacenter(admin, sample)
            driver = Driver([admin], 100, 0.1, 100.0)
            _, answers = await create_vms(driver, dc, 1)  # warm-up: the image cache
            await destroy_vms(driver, [a.body["inventory"]["uuid"] for a in answers])
            engines = [engine.sync_engine for engine in node.context.db.engines]
            for engine in engines:
                event.listen(engine, "before_cursor_execute", on_statement)
                event.listen(engine, "commit", on_commit)
            stats = node.context.bus.stats
            sent0, events0, agent0 = stats.sent, stats.events_published, agent_commands(node)
            _, answers = await create_vms(driver, dc, sample)
            sent, events = stats.sent - sent0, stats.events_published - events0
            agent = agent_commands(node) - agent0
            for engine in engines:
                event.remove(engine, "before_cursor_execute", on_statement)
                event.remove(engine, "commit", on_commit)
            failed = [a.body for a in answers if a.status != 200]
            if failed:
                raise RuntimeError(f"sample creates failed; first: {failed[0]}")
    finally:
        await node.stop()
    return {
        "sample_vms": sample,
        "bus_messages": round(sent / sample, 2),
        "bus_events": round(events / sample, 2),
        "db_writes": round(writes / sample, 2),
        "db_commits": round(commits / sample, 2),
        "db_statements": round(statements / sample, 2),  # reads too
        "agent_calls": round(agent / sample, 2),
    }


def machine_busy_seconds() -> float:
    """CPU seconds all cores spent busy since boot (/proc/stat: all but idle and iowait)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return (sum(fields[:8]) - idle) / CLK_TCK


def limit(counts: dict[str, float], bus_rate: float, db_rate: float, http_rate: float) -> float:
    """VMs/s if each VM's messages (events counted as messages), writes and agent calls
    cost what they cost bare, one after the other."""
    msgs = counts["bus_messages"] + counts["bus_events"]
    seconds = msgs / bus_rate + counts["db_writes"] / db_rate + counts["agent_calls"] / http_rate
    return 1 / seconds


# ----- phase 3: the real processes ---------------------------------------------------

# Counters summed over the nodes' /metrics around each size: what a burst costs at scale
# (the sample's per-VM counts are taken with a few VMs in flight), and whether agent
# callbacks came so late that commands were sent again.
NODE_COUNTERS = {
    "bus_messages": "zstack_bus_sent_total",
    "bus_events": "zstack_bus_events_published_total",
    "bus_timeouts": "zstack_bus_timeouts_total",
    "agent_resends": "zstack_agent_resends_total",
    "db_batches": "zstack_db_write_batches_total",
    "db_units": "zstack_db_write_units_total",
}


async def node_counters(clients: list[ApiClient]) -> dict[str, float]:
    totals = dict.fromkeys(NODE_COUNTERS, 0.0)
    for client in clients:
        async with client.http.get(f"{client.base}/metrics") as resp:
            samples = parse_metrics(await resp.text())
        for key, name in NODE_COUNTERS.items():
            totals[key] += sample(samples, name)
    return totals


@dataclass
class Setup:
    clients: list[ApiClient]
    pids: list[int]


@asynccontextmanager
async def processes(
    mode: str, tmp: Path, parallel_http: int, call_timeout: float | None
) -> AsyncIterator[Setup]:
    """The simulator and the node(s) of ``mode``; yield logged-in clients, one per node."""
    async with AsyncExitStack() as stack:
        sim_url = await simulator_process(stack)
        settings = {
            "ZSTACK_DATA_DIR": str(tmp),
            "ZSTACK_ADMIN_PASSWORD": ADMIN_PASSWORD,
            "ZSTACK_SIMULATOR": "1",
            "ZSTACK_SIMULATOR_URL": sim_url,
            "ZSTACK_LOG_LEVEL": "WARNING",
        }
        if call_timeout:
            settings["ZSTACK_CALL_TIMEOUT"] = str(call_timeout)
        if mode == "cluster":
            settings["ZSTACK_DB_URL"] = await stack.enter_async_context(
                fresh_mariadb("zstack_bench_")
            )
            settings["ZSTACK_BUS_URL"] = await stack.enter_async_context(
                fresh_vhost("zstack-bench")
            )
        env = node_env(**settings)
        code, _, err = await run_cli("db", "upgrade", env=env)
        if code != 0:
            raise RuntimeError(f"db upgrade failed: {err}")
        nodes = []
        for name in ("a", "b") if mode == "cluster" else ("a",):
            node = await start_node_process(env, tmp / f"node-{name}.log")
            stack.push_async_callback(node.terminate)
            nodes.append(node)
        http = await stack.enter_async_context(
            aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=None),
                connector=aiohttp.TCPConnector(limit=parallel_http + 10),
            )
        )
        clients = [ApiClient(f"http://127.0.0.1:{n.port}", http) for n in nodes]
        for client in clients:
            await client.login("admin", ADMIN_PASSWORD)
        yield Setup(clients, [n.proc.pid for n in nodes])


async def run_mode(mode: str, args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    table: dict[str, Any] = {}
    async with (
        processes(mode, tmp, args.parallel_http, args.call_timeout) as setup,
        AsyncExitStack() as stack,
    ):
        dc = await build_datacenter(setup.clients[0], max(args.counts))
        print(f"{mode}: {len(dc['hosts'])} hosts ready", file=sys.stderr)
        driver = Driver(setup.clients, args.parallel_http, args.poll_interval, args.poll_rate)
        if args.wait == "events":
            events = JobEvents(driver.job_completed, lambda: driver.poll_now(*POLL_PACE))
            for client in setup.clients:
                await events.open(client)
            stack.push_async_callback(events.close)
        _, answers = await create_vms(driver, dc, 1)  # warm-up: the image cache
        await destroy_vms(driver, [a.body["inventory"]["uuid"] for a in answers])
        for i, n in enumerate(args.counts):
            cpu0, polls0 = sum(cpu_seconds(p) for p in setup.pids), driver.polls
            busy0, counters0 = machine_busy_seconds(), await node_counters(setup.clients)
            wall, answers = await create_vms(driver, dc, n)
            cpu = sum(cpu_seconds(p) for p in setup.pids) - cpu0
            busy = machine_busy_seconds() - busy0
            counters = await node_counters(setup.clients)
            failed = [a.body for a in answers if a.status != 200]
            row: dict[str, Any] = {
                "wall_s": round(wall, 2),
                "vms_per_s": round(n / wall, 1),
                "failures": len(failed),
                "node_cpu_share": round(cpu / wall / len(setup.pids), 2),
                # Every process on the machine (nodes, MariaDB, RabbitMQ, simulator, this
                # driver, anything else running): 1.0 = all cores busy.
                "machine_cpu_share": round(busy / wall / (os.cpu_count() or 1), 2),
                "polls": driver.polls - polls0,
                "per_vm": {k: round((counters[k] - counters0[k]) / n, 2) for k in counters},
            }
            if failed:
                row["first_error"] = failed[0]
            print(f"{mode}: {n} VMs {json.dumps(row)}", file=sys.stderr)
            if i + 1 < len(args.counts):
                created = [a.body["inventory"]["uuid"] for a in answers if a.status == 200]
                row["destroy_s"] = round(await destroy_vms(driver, created), 2)
            table[str(n)] = row
    return {"nodes": len(setup.pids), "hosts": len(dc["hosts"]), "table": table}


async def run(args: argparse.Namespace) -> dict[str, Any]:
    modes = ["embedded", "cluster"] if args.mode == "both" else [args.mode]
    result: dict[str, Any] = {
        "bench": "vm_create",
        "counts": args.counts,
        "parallel_http": args.parallel_http,
        "wait": args.wait,
        "poll": {"interval_s": args.poll_interval, "max_per_s": args.poll_rate},
        "zstack_published_s": {str(n): s for n, s in ZSTACK_PUBLISHED_S.items()},
    }
    with tempfile.TemporaryDirectory(prefix="bench-vm-") as name:
        tmp = args.workdir or Path(name)
        tmp.mkdir(parents=True, exist_ok=True)
        print("bare rates...", file=sys.stderr)
        bare = await bare_rates("cluster" in modes, args.baseline_s, tmp)
        print(f"bare: {bare}", file=sys.stderr)
        (tmp / "counts").mkdir()
        counts = await per_vm_counts(args.sample, tmp / "counts")
        print(f"per VM: {counts}", file=sys.stderr)
        result.update(bare=bare, per_vm=counts, modes={})
        for mode in modes:
            (tmp / mode).mkdir()
            outcome = await run_mode(mode, args, tmp / mode)
            bus, db = (
                ("local_bus_rt_per_s", "sqlite_insert_commit_per_s")
                if mode == "embedded"
                else ("amqp_rt_per_s", "mariadb_insert_commit_per_s")
            )
            lim = limit(counts, bare[bus], bare[db], bare["http_post_callback_per_s"])
            largest = outcome["table"][str(max(args.counts))]
            outcome["limit_vms_per_s"] = round(lim, 1)
            outcome["ratio"] = round(largest["vms_per_s"] / lim, 3)
            outcome["goal_ratio"] = GOAL
            result["modes"][mode] = outcome
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--mode", choices=("embedded", "cluster", "both"), default="embedded")
    parser.add_argument(
        "--counts",
        type=lambda s: sorted({int(n) for n in s.split(",")}),
        default=[1, 10, 100, 1000, 10000],
        help="comma-separated VM counts",
    )
    parser.add_argument("--parallel-http", type=int, default=200, help="HTTP requests in flight")
    parser.add_argument(
        "--wait",
        choices=("events", "poll"),
        default="events",
        help="learn that jobs ended from the event stream (polling as the safety net) or "
        "by polling alone",
    )
    parser.add_argument(
        "--poll-interval",
        type=float,
        help="per job, seconds (default: 0.1 with --wait poll, 30 with --wait events)",
    )
    parser.add_argument(
        "--poll-rate", type=float, help="max polls/s in total (default: 100 poll, 10 events)"
    )
    parser.add_argument(
        "--call-timeout", type=float, help="the nodes' default bus call timeout (theirs: 30 s)"
    )
    parser.add_argument("--sample", type=int, default=20, help="VMs the per-VM counts average")
    parser.add_argument("--workdir", type=Path, help="empty dir to keep DBs and logs in")
    parser.add_argument("--baseline-s", type=float, default=3.0, help="per bare rate")
    args = parser.parse_args()
    args.poll_interval, args.poll_rate = pace(args.wait, args.poll_interval, args.poll_rate)
    print(json.dumps(asyncio.run(run(args))))


if __name__ == "__main__":
    main()
