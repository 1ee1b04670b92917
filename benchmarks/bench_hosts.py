"""10,000 simulated KVM hosts added through the REST API and kept pinged, beside the bare
aiohttp POST + callback rate measured in the same run.

Three processes: the simulator (``python -m simulator``), the management node
(``zstackpy run``, embedded: SQLite + in-process bus, ``ZSTACK_SIMULATOR_URL`` pointing at
the simulator) and this driver. Phases:

1. baseline: a bare aiohttp "agent" child process answers every POST at once and posts a
   callback to a bare aiohttp "node" in this process, which matches it to a future: the
   least the agent protocol can cost, at ``--parallel`` calls in flight.
2. add: ``--hosts`` AddKVMHost calls, ``--parallel`` at a time, each followed to its job's
   end (deploy, connect, facts, capacity, connect extensions, rows). Pinging is slowed to
   one round an hour meanwhile so it does not compete.
3. ping: ``host ping.interval`` set to ``--interval``; for ``--seconds`` s count the
   ``/host/ping`` commands the simulator served. Rounds/s = pings/s / hosts. The node's CPU
   share (of one core) and RSS come from /proc/<pid>.

Prints one JSON line. Usage:
``python benchmarks/bench_hosts.py [--hosts 10000] [--parallel 100] [--interval 1] [--seconds 30]``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from simulator.stress.datacenter import add_hosts, set_global_config  # noqa: E402
from simulator.stress.processes import (  # noqa: E402
    cpu_seconds,
    embedded_node,
    free_port,
    rss_mib,
)
from simulator.stress.rest import ApiClient, ApiError, Driver  # noqa: E402
from zstackpy.core import eventloop  # noqa: E402

ADMIN_PASSWORD = "bench-admin-pw"


# ----- baseline: bare agent (child process) and bare node (here) -----------------------


async def bare_agent(port: int) -> None:
    """Answer at once, then POST ``{"success": true}`` to the callback URL."""
    http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1000))
    tasks: set[asyncio.Task[None]] = set()

    async def callback(url: str, task_uuid: str) -> None:
        async with http.post(url, json={"success": True}, headers={"taskuuid": task_uuid}):
            pass

    async def handle(request: web.Request) -> web.Response:
        await request.read()
        task = asyncio.create_task(
            callback(request.headers["callbackurl"], request.headers["taskuuid"])
        )
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        return web.json_response({})

    app = web.Application()
    app.router.add_post("/{tail:.*}", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    print("ready", flush=True)
    await asyncio.Event().wait()


async def baseline(parallel: int, seconds: float) -> float:
    """Calls/s of a bare POST + callback round trip at ``parallel`` in flight."""
    agent_port = free_port()
    child = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--bare-agent", str(agent_port), stdout=asyncio.subprocess.PIPE
    )
    assert child.stdout is not None
    await child.stdout.readline()
    pending: dict[str, asyncio.Future[None]] = {}

    async def on_callback(request: web.Request) -> web.Response:
        await request.read()
        future = pending.pop(request.headers["taskuuid"], None)
        if future is not None:
            future.set_result(None)
        return web.Response()

    app = web.Application()
    app.router.add_post("/cb", on_callback)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    node_port = free_port()
    await web.TCPSite(runner, "127.0.0.1", node_port).start()
    done = 0
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    try:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1000)) as http:

            async def worker(n: int) -> None:
                nonlocal done
                i = 0
                while loop.time() < deadline:
                    task_uuid = f"{n:08x}{i:024x}"
                    i += 1
                    future: asyncio.Future[None] = loop.create_future()
                    pending[task_uuid] = future
                    headers = {
                        "taskuuid": task_uuid,
                        "callbackurl": f"http://127.0.0.1:{node_port}/cb",
                    }
                    url = f"http://127.0.0.1:{agent_port}/host/ping"
                    async with http.post(url, json={"hostUuid": "h"}, headers=headers) as resp:
                        await resp.read()
                    await future
                    done += 1

            started = loop.time()
            await asyncio.gather(*(worker(n) for n in range(parallel)))
            return done / (loop.time() - started)
    finally:
        child.terminate()
        await child.wait()
        await runner.cleanup()


# ----- the real thing -------------------------------------------------------------------


async def _create(driver: Driver, path: str, params: dict[str, Any]) -> dict[str, Any]:
    answer = await driver.job(driver.clients[0], "POST", path, {"params": params})
    if answer.status != 200:
        raise ApiError(f"POST {path}", answer)
    inventory: dict[str, Any] = answer.body["inventory"]
    return inventory


async def ping_count(http: aiohttp.ClientSession, sim_url: str) -> int:
    async with http.get(f"{sim_url}/simulator/stats") as resp:
        stats = await resp.json()
    return int(stats["commands"].get("/host/ping", 0))


async def run(args: argparse.Namespace) -> dict[str, Any]:
    result: dict[str, Any] = {"hosts": args.hosts, "parallel": args.parallel}
    result["bare_post_callback_per_s"] = round(await baseline(args.parallel, args.baseline_s))
    with tempfile.TemporaryDirectory(prefix="bench-hosts-") as tmp:
        async with embedded_node(Path(tmp), ADMIN_PASSWORD) as node:
            pid, sim_url = node.pid, node.simulator_url
            timeout = aiohttp.ClientTimeout(total=None)
            connector = aiohttp.TCPConnector(limit=args.parallel + 10)
            async with aiohttp.ClientSession(timeout=timeout, connector=connector) as http:
                admin = ApiClient(node.url, http)
                await admin.login("admin", ADMIN_PASSWORD)
                await set_global_config(admin, "host", "ping.interval", 3600)
                driver = Driver([admin], args.parallel + 10, poll_interval=0.05, poll_rate=1000)
                zone = await _create(driver, "/zones", {"name": "bench"})
                cluster = await _create(
                    driver,
                    "/clusters",
                    {"zoneUuid": zone["uuid"], "name": "bench", "hypervisorType": "KVM"},
                )
                cpu0, t0 = cpu_seconds(pid), time.monotonic()
                answers = await add_hosts(
                    driver,
                    cluster["uuid"],
                    range(args.hosts),
                    prefix="bench",
                    parallel=args.parallel,
                )
                failures = [a.body for a in answers if a.status != 200]
                add_s = time.monotonic() - t0
                result["add_s"] = round(add_s, 1)
                result["adds_per_s"] = round(args.hosts / add_s, 1)
                result["add_failures"] = len(failures)
                result["add_node_cpu_share"] = round((cpu_seconds(pid) - cpu0) / add_s, 2)
                result["rss_after_add_mib"] = round(rss_mib(pid))

                await set_global_config(admin, "host", "ping.interval", args.interval)
                await driver.close()
                await asyncio.sleep(min(5.0, args.interval * 2))  # let rounds start
                pings0, cpu0, t0 = (
                    await ping_count(http, sim_url),
                    cpu_seconds(pid),
                    time.monotonic(),
                )
                await asyncio.sleep(args.seconds)
                pings1, cpu1, t1 = (
                    await ping_count(http, sim_url),
                    cpu_seconds(pid),
                    time.monotonic(),
                )
                pings_per_s = (pings1 - pings0) / (t1 - t0)
                result["ping_interval_s"] = args.interval
                result["pings_per_s"] = round(pings_per_s)
                result["ping_rounds_per_s"] = round(pings_per_s / args.hosts, 3)
                result["ping_node_cpu_share"] = round((cpu1 - cpu0) / (t1 - t0), 2)
                result["rss_pinging_mib"] = round(rss_mib(pid))
                result["ping_vs_bare"] = round(pings_per_s / result["bare_post_callback_per_s"], 2)
                if failures:
                    result["first_failure"] = failures[0]
    return result


async def bare_only(parallel: int, seconds: float) -> dict[str, Any]:
    """The baseline alone, and what a call costs the calling side (the node's part)."""
    cpu0 = time.process_time()
    rate = await baseline(parallel, seconds)
    cpu = time.process_time() - cpu0
    return {
        "loop": eventloop.loop_name(),
        "bare_post_callback_per_s": round(rate),
        "caller_cpu_ms_per_call": round(1000 * cpu / (rate * seconds), 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--hosts", type=int, default=10_000)
    parser.add_argument("--parallel", type=int, default=100)
    parser.add_argument("--interval", type=float, default=1.0)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--baseline-s", type=float, default=10.0)
    parser.add_argument(
        "--bare-only",
        action="store_true",
        help="only the bare POST + callback baseline, with the caller's CPU per call "
        "(ZSTACK_EVENT_LOOP picks both sides' loop)",
    )
    parser.add_argument("--bare-agent", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bare_agent:
        eventloop.run(bare_agent(args.bare_agent))
        return
    if args.bare_only:
        print(json.dumps(eventloop.run(bare_only(args.parallel, args.baseline_s))))
        return
    print(json.dumps(eventloop.run(run(args))))


if __name__ == "__main__":
    main()
