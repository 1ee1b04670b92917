"""Query API over HTTP: sync ``GET /zstack/v1/zones?...`` on 100,000 zones, beside a bare
aiohttp handler that answers the same JSON body, under the same client load in the same run.

The node is embedded (in-process bus) on SQLite, and also on MariaDB when
``ZSTACK_BENCH_DB_URL`` names a server (``mysql+asyncmy://root@127.0.0.1:3306/``): a fresh
database is made there and dropped afterwards. The zones are inserted directly, ZoneVO and
ResourceVO rows in executemany batches (creating 100,000 through the API would take many
minutes and measure the create path, not queries).

The load comes from a child process (its own interpreter and event loop), so the client's
own CPU is not taken from the server's loop; it runs ``--clients`` concurrent requests in a
loop for ``--seconds`` per scenario, against the node and then against the bare app, and
repeats that ``--rounds`` times (medians). Prints one JSON line.
Usage: ``python benchmarks/bench_query.py [--zones N] [--clients N] [--seconds S] [--rounds N]``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from pydantic import SecretStr
from sqlalchemy import insert, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from zstackpy.core.bus.inproc import InProcBroker
from zstackpy.core.db import upgrade
from zstackpy.core.db.models import ResourceVO
from zstackpy.core.ids import new_uuid
from zstackpy.core.settings import NodeSettings
from zstackpy.node.node import ManagementNode
from zstackpy.services.identity.models import AccountVO
from zstackpy.services.zone.models import ZoneVO

ADMIN_PASSWORD = "bench-admin-pw"
BATCH = 5_000
# name: (path and query, what it exercises)
SCENARIOS: dict[str, str] = {
    "by_name": "/zstack/v1/zones?q=name=zone-12345",
    "paged": "/zstack/v1/zones?limit=20&start=5000&q=state=Enabled",
}


# ----- the load generator (child process) ------------------------------------------------


async def load(url: str, headers: dict[str, str], clients: int, seconds: float) -> dict[str, Any]:
    """``clients`` loops of GET ``url`` for ``seconds`` (after a short warm-up)."""
    latencies: list[float] = []
    errors = 0
    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(connector=connector, headers=headers) as http:
        loop = asyncio.get_running_loop()

        async def worker(until: float, record: bool) -> None:
            nonlocal errors
            while loop.time() < until:
                started = time.perf_counter()
                async with http.get(url) as resp:
                    await resp.read()
                    if resp.status != 200:
                        errors += 1
                if record:
                    latencies.append(time.perf_counter() - started)

        warm_until = loop.time() + min(0.5, seconds / 4)
        await asyncio.gather(*(worker(warm_until, False) for _ in range(clients)))
        begin = loop.time()
        await asyncio.gather(*(worker(begin + seconds, True) for _ in range(clients)))
        elapsed = loop.time() - begin
    latencies.sort()
    return {
        "rps": len(latencies) / elapsed,
        "p50_ms": 1000 * latencies[len(latencies) // 2],
        "p99_ms": 1000 * latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))],
        "errors": errors,
    }


def client_main(args: argparse.Namespace) -> None:
    headers = json.loads(args.headers)
    result = asyncio.run(load(args.url, headers, args.clients, args.seconds))
    print(json.dumps(result))


async def measure(url: str, headers: dict[str, str], clients: int, seconds: float) -> Any:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        __file__,
        "--client",
        "--url",
        url,
        "--headers",
        json.dumps(headers),
        "--clients",
        str(clients),
        "--seconds",
        str(seconds),
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"load generator failed ({proc.returncode})")
    return json.loads(out)


# ----- the node and its data --------------------------------------------------------------


@asynccontextmanager
async def fresh_database(server_url: str | None, data_dir: Path) -> AsyncIterator[str]:
    """A SQLite file in ``data_dir``, or a new database on the MariaDB server (dropped after)."""
    if server_url is None:
        yield f"sqlite+aiosqlite:///{data_dir / 'zstack.db'}"
        return
    root_url = make_url(server_url)
    name = f"zstack_bench_{new_uuid()}"
    root = create_async_engine(root_url, poolclass=NullPool)
    try:
        async with root.begin() as conn:
            await conn.execute(text(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4"))
        try:
            yield root_url.set(database=name).render_as_string(hide_password=False)
        finally:
            async with root.begin() as conn:
                await conn.execute(text(f"DROP DATABASE IF EXISTS `{name}`"))
    finally:
        await root.dispose()


async def insert_zones(node: ManagementNode, count: int) -> float:
    """``count`` zones named zone-<i>, owned by admin, in executemany batches; seconds taken."""
    db = node.context.db
    started = time.perf_counter()
    async with db.session() as session:
        admin_uuid = (
            await session.execute(select(AccountVO.uuid).where(AccountVO.name == "admin"))
        ).scalar_one()
    base = datetime.now(UTC).replace(tzinfo=None, microsecond=0) - timedelta(seconds=count)
    for first in range(0, count, BATCH):
        zones: list[dict[str, Any]] = []
        resources: list[dict[str, Any]] = []
        for i in range(first, min(first + BATCH, count)):
            uuid = new_uuid()
            # Distinct create dates, as zones created over time would have.
            when = base + timedelta(seconds=i)
            zones.append(
                {
                    "uuid": uuid,
                    "name": f"zone-{i}",
                    "description": None,
                    "state": "Enabled" if i % 10 else "Disabled",
                    "type": "zstack",
                    "is_default": False,
                    "create_date": when,
                    "last_op_date": when,
                }
            )
            resources.append(
                {
                    "uuid": uuid,
                    "resource_type": "ZoneVO",
                    "resource_name": f"zone-{i}",
                    "account_uuid": admin_uuid,
                    "create_date": when,
                    "last_op_date": when,
                }
            )
        async with db.session() as session, session.begin():
            await session.execute(insert(ZoneVO), zones)
            await session.execute(insert(ResourceVO), resources)
    return time.perf_counter() - started


def bare_app(bodies: dict[str, Any]) -> web.Application:
    """The least an aiohttp app can do for the same answers: match the route, dump the body."""

    async def zones(request: web.Request) -> web.Response:
        key = "paged" if "limit" in request.query else "by_name"
        return web.json_response(bodies[key])

    app = web.Application()
    app.router.add_get("/zstack/v1/zones", zones)
    return app


async def login(base: str) -> str:
    import hashlib

    digest = hashlib.sha512(ADMIN_PASSWORD.encode()).hexdigest()
    async with (
        aiohttp.ClientSession() as http,
        http.put(
            f"{base}/zstack/v1/accounts/login",
            json={"logInByAccount": {"accountName": "admin", "password": digest}},
        ) as resp,
    ):
        body = await resp.json()
    return str(body["inventory"]["uuid"])


async def run_backend(db_name: str, server_url: str | None, args: argparse.Namespace) -> Any:
    with tempfile.TemporaryDirectory() as tmp:
        async with fresh_database(server_url, Path(tmp)) as db_url:
            settings = NodeSettings(
                data_dir=Path(tmp),
                db_url=db_url,
                http_port=0,
                admin_password=SecretStr(ADMIN_PASSWORD),
                log_level="WARNING",
            )
            await upgrade(settings.database_url)
            node = ManagementNode(settings, broker=InProcBroker())
            await node.start()
            try:
                insert_s = await insert_zones(node, args.zones)
                assert node.http is not None
                base = f"http://127.0.0.1:{node.http.port}"
                headers = {"Authorization": f"OAuth {await login(base)}"}
                bodies: dict[str, Any] = {}
                async with aiohttp.ClientSession(headers=headers) as http:
                    for name, path in SCENARIOS.items():
                        async with http.get(base + path) as resp:
                            assert resp.status == 200, await resp.text()
                            bodies[name] = await resp.json()
                assert len(bodies["by_name"]["inventories"]) == 1
                assert len(bodies["paged"]["inventories"]) == 20

                runner = web.AppRunner(bare_app(bodies), access_log=None)
                await runner.setup()
                site = web.TCPSite(runner, "127.0.0.1", 0)
                await site.start()
                bare_port = runner.addresses[0][1]
                try:
                    results = await _scenarios(base, f"http://127.0.0.1:{bare_port}", headers, args)
                finally:
                    await runner.cleanup()
            finally:
                await node.stop()
    return {"db": db_name, "zones": args.zones, "insert_s": round(insert_s, 1), **results}


async def _scenarios(
    node_base: str, bare_base: str, headers: dict[str, str], args: argparse.Namespace
) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for name, path in SCENARIOS.items():
        ours: list[dict[str, Any]] = []
        bare: list[dict[str, Any]] = []
        for _ in range(args.rounds):
            # Interleaved round by round, so drift (steal time, cache) hits both alike.
            ours.append(await measure(node_base + path, headers, args.clients, args.seconds))
            bare.append(await measure(bare_base + path, headers, args.clients, args.seconds))
        summary: dict[str, Any] = {"path": path}
        for label, runs in (("node", ours), ("bare", bare)):
            for key in ("rps", "p50_ms", "p99_ms"):
                summary[f"{label}_{key}"] = round(statistics.median(r[key] for r in runs), 2)
            summary[f"{label}_errors"] = sum(r["errors"] for r in runs)
        summary["ratio"] = round(summary["node_rps"] / summary["bare_rps"], 3)
        results[name] = summary
    return results


async def main(args: argparse.Namespace) -> None:
    backends: list[tuple[str, str | None]] = [("sqlite", None)]
    server_url = os.environ.get("ZSTACK_BENCH_DB_URL")
    if server_url:
        backends.append(("mariadb", server_url))
    runs = [await run_backend(name, url, args) for name, url in backends]
    print(
        json.dumps(
            {
                "bench": "query",
                "clients": args.clients,
                "seconds": args.seconds,
                "rounds": args.rounds,
                "runs": runs,
            }
        )
    )


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--zones", type=int, default=100_000)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--client", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--headers", default="{}", help=argparse.SUPPRESS)
    return parser.parse_args()


if __name__ == "__main__":
    arguments = parse_args()
    if arguments.client:
        client_main(arguments)
    else:
        asyncio.run(main(arguments))
