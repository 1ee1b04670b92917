"""The scale runs of the issue's table: ``zstack-stress`` in embedded mode (one node, SQLite,
in-process bus: the driver starts it) or in cluster mode (two ``zstackpy run`` nodes on a
fresh MariaDB database and a fresh RabbitMQ vhost, started here), with baselines measured
in the same run beside the driver's figures:

- ``bare_http_callbacks_per_s``: a bare aiohttp POST + callback pair, 100 in flight
  (bench_hosts's baseline), beside the node's pings/s;
- ``bare_sql_ms``: the two reference queries run straight on the node's database (the
  same rows the REST queries return, no API, no inventories), p50/p99, beside the REST
  queries' latency.

Usage::

    python benchmarks/bench_scale.py --mode embedded|cluster -- <zstack-stress arguments>

e.g. ``-- --hosts 10000 --fast-hosts --vms 10000 --concurrency 1000 --fast-vms 90000
--queries 1000 --watch 60``. Prints one JSON line: the stress summary plus ``baselines``
and ``mode``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import secrets
import sys
import tempfile
import time
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import aiohttp
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench_hosts import baseline  # noqa: E402

from simulator.stress.cli import parse_args as stress_args  # noqa: E402
from simulator.stress.cli import run as stress_run  # noqa: E402
from simulator.stress.figures import Errors, Latencies  # noqa: E402
from simulator.stress.queries import run_queries, sample_targets  # noqa: E402
from simulator.stress.rest import ApiClient  # noqa: E402
from tests.support.mariadb import fresh_mariadb  # noqa: E402
from tests.support.processes import (  # noqa: E402
    node_env,
    run_cli,
    simulator_process,
    start_node_process,
)
from tests.support.rabbit import fresh_vhost  # noqa: E402

BARE_QUERIES = 300
INDEXED_SQL = (
    "SELECT v.uuid FROM VmInstanceVO v WHERE v.host_uuid = :target AND v.state = 'Running'"
)
JOIN_SQL = (
    "SELECT DISTINCT z.uuid FROM ZoneVO z JOIN VmInstanceVO v ON v.zone_uuid = z.uuid "
    "JOIN VmNicVO n ON n.vm_instance_uuid = v.uuid WHERE n.ip = :target"
)


async def bare_sql(db_url: str) -> dict[str, Any]:
    """The reference queries straight on the database, on targets drawn as the driver
    draws them."""
    hosts, ips = await sample_targets(db_url)
    engine = create_async_engine(db_url)
    figures: dict[str, Any] = {}
    try:
        async with engine.connect() as conn:
            for name, sql, targets in (("indexed", INDEXED_SQL, hosts), ("join", JOIN_SQL, ips)):
                latency = Latencies()
                for _ in range(BARE_QUERIES):
                    target = targets[random.randrange(len(targets))]
                    started = time.perf_counter()
                    (await conn.execute(text(sql), {"target": target})).all()
                    latency.add(time.perf_counter() - started)
                figures[name] = latency.summary()
    finally:
        await engine.dispose()
    return figures


async def cluster(stack: AsyncExitStack, workdir: Path) -> tuple[list[str], str, str, str]:
    """Simulator + two nodes on fresh MariaDB and RabbitMQ; (node urls, db url, simulator
    url, admin password)."""
    sim_url = await simulator_process(stack, workdir / "simulator.log")
    password = secrets.token_urlsafe(16)
    db_url = await stack.enter_async_context(fresh_mariadb("zstack_scale_"))
    env = node_env(
        ZSTACK_DATA_DIR=str(workdir),
        ZSTACK_ADMIN_PASSWORD=password,
        ZSTACK_SIMULATOR="1",
        ZSTACK_SIMULATOR_URL=sim_url,
        ZSTACK_LOG_LEVEL="WARNING",
        ZSTACK_DB_URL=db_url,
        ZSTACK_BUS_URL=await stack.enter_async_context(fresh_vhost("zstack-scale")),
    )
    code, _, err = await run_cli("db", "upgrade", env=env)
    if code != 0:
        raise RuntimeError(f"db upgrade failed: {err}")
    urls = []
    for name in ("a", "b"):
        node = await start_node_process(env, workdir / f"node-{name}.log", timeout=120)
        stack.push_async_callback(node.terminate)
        urls.append(f"http://127.0.0.1:{node.port}")
    return urls, db_url, sim_url, password


async def main_async(mode: str, stress_argv: list[str]) -> dict[str, Any]:
    async with AsyncExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="scale-")))
        argv = list(stress_argv)
        if mode == "cluster":
            urls, db_url, sim_url, password = await cluster(stack, workdir)
            for url in urls:
                argv += ["--url", url]
            argv += ["--db-url", db_url, "--simulator-url", sim_url, "--password", password]
        else:
            argv += ["--workdir", str(workdir)]
            db_url = f"sqlite+aiosqlite:///{workdir / 'zstack.db'}"
        args = stress_args(argv)
        # The embedded node is the driver's: its database outlives it in the workdir.
        summary = await stress_run(args)
        print("baseline: the reference queries straight on the database", file=sys.stderr)
        bare = await bare_sql(db_url) if args.queries else {}
    # After the run, as its measurements were (a held run's build may share the machine).
    print("baseline: bare POST + callback", file=sys.stderr, flush=True)
    bare_http = await baseline(100, 5.0)
    summary["mode"] = mode
    summary["baselines"] = {"bare_http_callbacks_per_s": round(bare_http, 1), "bare_sql": bare}
    return summary


async def queries_on(data_dir: Path, password: str, count: int) -> dict[str, Any]:
    """The reference queries through REST on an embedded node started on a data directory
    a run left (its simulator is gone: keep ``host ping.interval`` long and
    ``host reconnectAllOnBoot`` off in it), beside the same queries straight in SQL."""
    db_url = f"sqlite+aiosqlite:///{data_dir / 'zstack.db'}"
    async with AsyncExitStack() as stack:
        sim_url = await simulator_process(stack, data_dir / "simulator-queries.log")
        env = node_env(
            ZSTACK_DATA_DIR=str(data_dir),
            ZSTACK_SIMULATOR="1",
            ZSTACK_SIMULATOR_URL=sim_url,
            ZSTACK_LOG_LEVEL="WARNING",
        )
        node = await start_node_process(env, data_dir / "node-queries.log", timeout=300)
        stack.push_async_callback(node.terminate)
        http = await stack.enter_async_context(aiohttp.ClientSession())
        admin = ApiClient(f"http://127.0.0.1:{node.port}", http)
        await admin.login("admin", password)
        hosts, ips = await sample_targets(db_url)
        errors = Errors()
        latency = await run_queries(admin, hosts, ips, count, 4, errors, lambda _failed: None)
        result: dict[str, Any] = {
            "rest": {name: lat.summary() for name, lat in latency.items()},
            "errors": dict(errors.by_code),
        }
    result["bare_sql"] = await bare_sql(db_url)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mode", choices=("embedded", "cluster"), default="embedded")
    parser.add_argument(
        "--queries-on",
        type=Path,
        help="only the query phase, on an embedded node started on this data directory",
    )
    parser.add_argument("--password", help="with --queries-on: the admin's password")
    parser.add_argument("--queries", type=int, default=1000, help="with --queries-on")
    parser.add_argument("stress", nargs=argparse.REMAINDER, help="-- then zstack-stress args")
    args = parser.parse_args()
    if args.queries_on is not None:
        if not args.password:
            parser.error("--queries-on needs --password")
        result = asyncio.run(queries_on(args.queries_on, args.password, args.queries))
        print(json.dumps(result), flush=True)
        return
    stress_argv = args.stress[1:] if args.stress[:1] == ["--"] else args.stress
    print(json.dumps(asyncio.run(main_async(args.mode, stress_argv))), flush=True)


if __name__ == "__main__":
    main()
