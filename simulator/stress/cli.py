"""``zstack-stress``: build a data center of N simulated hosts over the REST API, create M
VMs with C API clients in flight, show live progress on stderr and print a JSON summary on
stdout.

By default it starts its own simulator and embedded node (SQLite, in-process bus) as child
processes in a temporary directory; ``--url`` drives a running node instead (its hosts must
be simulated). The summary: seconds per phase, hosts added/s, VMs created/s, API latency
p50/p99 (AddKVMHost and CreateVmInstance, to the job's end, and the create's 202), errors
by code, the node's RSS and CPU (from its ``/metrics``), and a check that ``/metrics``
counted the work done. Exit status 0 when there was no error and the counts match, else 1.
``--smoke`` (10 hosts, 300 VMs, 50 clients) takes well under a minute.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import signal
import sys
import tempfile
import time
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import aiohttp

from simulator.stress.datacenter import (
    Shape,
    add_hosts,
    build_base,
    global_config,
    host_ip,
    nfs_url,
    set_global_config,
    vm_body,
)
from simulator.stress.fastpath import NewHost, clone_hosts, clone_vms, spread
from simulator.stress.figures import (
    Errors,
    Latencies,
    Samples,
    merge_nodes,
    parse_metrics,
    sample,
)
from simulator.stress.job_events import POLL_PACE, JobEvents, pace
from simulator.stress.processes import embedded_node
from simulator.stress.progress import LiveProgress
from simulator.stress.queries import run_queries, sample_targets
from simulator.stress.rest import Answer, ApiClient, ApiError, Driver

SMOKE = {"hosts": 10, "vms": 300, "concurrency": 50}
# After the last create the node's host and VM counts may be this old (its scrape cache).
SETTLE_S = 15.0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="zstack-stress",
        description="Build N simulated hosts and create M VMs over the REST API; "
        "progress on stderr, a JSON summary on stdout.",
    )
    parser.add_argument("--hosts", type=int, default=100, help="simulated KVM hosts (N)")
    parser.add_argument("--vms", type=int, default=1000, help="VMs to create (M)")
    parser.add_argument(
        "--concurrency", type=int, default=100, help="API clients with a create in flight (C)"
    )
    parser.add_argument(
        "--smoke", action="store_true", help="10 hosts, 300 VMs, 50 clients (under a minute)"
    )
    parser.add_argument(
        "--url",
        action="append",
        help="a running node (http://host:port) instead of starting one; repeat it for the "
        "nodes of a cluster (creates alternate between them, figures are summed)",
    )
    parser.add_argument(
        "--password",
        default=os.environ.get("ZSTACK_ADMIN_PASSWORD"),
        help="the admin's password with --url (default: $ZSTACK_ADMIN_PASSWORD)",
    )
    parser.add_argument("--host-parallel", type=int, default=50, help="AddKVMHost calls at once")
    parser.add_argument(
        "--ping-interval",
        type=int,
        help="set the global config host ping.interval (s) before adding hosts",
    )
    parser.add_argument(
        "--global-config",
        action="append",
        default=[],
        metavar="CATEGORY:NAME=VALUE",
        help="set a global config before adding hosts (repeatable), e.g. "
        "kvm:vmSyncOnHostPing=false",
    )
    parser.add_argument(
        "--wait",
        choices=("events", "poll"),
        default="events",
        help="learn that jobs ended from the node's event stream (polling as the safety "
        "net) or by polling alone",
    )
    parser.add_argument(
        "--poll-interval",
        type=float,
        help="per job, seconds (default: 0.1 with --wait poll, 30 with --wait events)",
    )
    parser.add_argument(
        "--poll-rate", type=float, help="job polls/s at most (default: 100 poll, 10 events)"
    )
    parser.add_argument(
        "--fast-hosts",
        action="store_true",
        help="add the first host through the API and every other one through the fast path "
        "(copies of the first's rows: simulator/stress/fastpath.py)",
    )
    parser.add_argument(
        "--fast-vms",
        type=int,
        default=0,
        help="after the API's VMs, add this many more through the fast path (copies of "
        "the first VM the API made)",
    )
    parser.add_argument(
        "--queries", type=int, default=0, help="at the end, this many REST queries of each kind"
    )
    parser.add_argument("--query-concurrency", type=int, default=4, help="queries in flight")
    parser.add_argument(
        "--watch",
        type=float,
        default=0.0,
        help="at the end, seconds to watch the node with no API load (pings only): its "
        "CPU share, RSS and pings/s",
    )
    parser.add_argument(
        "--measure-on-signal",
        action="store_true",
        help="after the build, hold the queries and the watch until the driver gets SIGUSR1 "
        "(a long build can share the machine; its measurements should not)",
    )
    parser.add_argument(
        "--watch-ping-interval",
        type=float,
        help="set host ping.interval to this before watching (a large --ping-interval keeps "
        "pings out of the way while the data center is built)",
    )
    parser.add_argument("--db-url", help="with --url: the node's database (fast path, queries)")
    parser.add_argument("--simulator-url", help="with --url: the simulator (fast path)")
    parser.add_argument("--workdir", type=Path, help="keep the started node's files here")
    parser.add_argument("--plain", action="store_true", help="progress lines, not a bar")
    args = parser.parse_args(argv)
    if args.smoke:
        for key, value in SMOKE.items():
            setattr(args, key, value)
    if args.url and not args.password:
        parser.error("--url needs --password (or ZSTACK_ADMIN_PASSWORD)")
    fast = args.fast_hosts or args.fast_vms
    if args.url and (fast or args.queries) and not args.db_url:
        parser.error("with --url, the fast path and the queries need --db-url")
    if args.url and fast and not args.simulator_url:
        parser.error("with --url, the fast path needs --simulator-url")
    for item in args.global_config:
        category, _, rest = item.partition(":")
        name, equals, _value = rest.partition("=")
        if not (category and name and equals):
            parser.error(f"--global-config wants CATEGORY:NAME=VALUE, not {item!r}")
    if args.fast_vms and args.vms < 1:
        parser.error("--fast-vms copies an API-made VM: --vms must be at least 1")
    if args.fast_vms < 0 or args.queries < 0 or args.watch < 0:
        parser.error("--fast-vms, --queries and --watch must not be negative")
    for name in ("hosts", "vms", "concurrency", "host_parallel"):
        if getattr(args, name) < (0 if name == "vms" else 1):
            parser.error(f"--{name.replace('_', '-')} is too small")
    return args


class Run:
    """One stress run against one node; ``summary()`` is the JSON printed at the end."""

    def __init__(
        self,
        args: argparse.Namespace,
        urls: list[str],
        live: LiveProgress,
        db_url: str | None = None,
        simulator_url: str | None = None,
    ) -> None:
        self.args = args
        self.urls = [url.rstrip("/") for url in urls]
        self.db_url = db_url
        self.simulator_url = simulator_url
        self.live = live
        self.prefix = f"stress-{secrets.token_hex(3)}"
        self.phases: dict[str, float] = {}
        self.errors = Errors()
        self.latency = {
            "add_host_job": Latencies(),
            "create_vm_202": Latencies(),
            "create_vm_job": Latencies(),
        }
        self.hosts_added = 0  # through the API
        self.hosts_copied = 0  # through the fast path
        self.vms_created = 0
        self.vms_copied = 0
        self.first_host: str | None = None  # the fast path's templates
        self.first_vm: dict[str, Any] | None = None
        self.queried: dict[str, Latencies] = {}
        self.watched: dict[str, float] = {}
        self.password = ""
        self.node: dict[str, float] = {}
        self.checks: dict[str, dict[str, float]] = {}
        self.failure: str | None = None  # why the run stopped before its end

    async def scrape(self, http: aiohttp.ClientSession) -> Samples:
        """Every node's ``/metrics`` as one (``merge_nodes``)."""
        per_node = []
        for url in self.urls:
            async with http.get(f"{url}/metrics") as resp:
                if resp.status != 200:
                    raise RuntimeError(f"GET {url}/metrics answered {resp.status}")
                per_node.append(parse_metrics(await resp.text()))
        return merge_nodes(per_node)

    async def go(self, http: aiohttp.ClientSession, password: str) -> None:
        args = self.args
        self.password = password
        clients = [ApiClient(url, http) for url in self.urls]
        for client in clients:
            await client.login("admin", password)
        admin = clients[0]
        interval, rate = pace(args.wait, args.poll_interval, args.poll_rate)
        driver = Driver(clients, args.concurrency + args.host_parallel, interval, rate)
        events = JobEvents(driver.job_completed, lambda: driver.poll_now(*POLL_PACE))
        try:
            if args.wait == "events":
                for client in clients:
                    await events.open(client)
            before = await self.scrape(http)
            with self.timed("datacenter"):
                if args.ping_interval:
                    await set_global_config(admin, "host", "ping.interval", args.ping_interval)
                for item in args.global_config:
                    category, _, rest = item.partition(":")
                    name, _, value = rest.partition("=")
                    await set_global_config(admin, category, name, value)
                await self.size_nfs_share(http)
                dc = await build_base(driver, admin, self.prefix, args.vms + args.fast_vms, Shape())
            with self.timed("hosts"):
                await self.add_hosts(driver, dc)
            if args.fast_hosts and args.hosts > 1:
                with self.timed("hosts_fast"):
                    await self.copy_hosts()
            cpu_before = sample(await self.scrape(http), "process_cpu_seconds_total")
            with self.timed("vms"):
                await self.create_vms(driver, dc)
            vms_done = await self.scrape(http)
            if args.fast_vms:
                with self.timed("vms_fast"):
                    await self.copy_vms(admin, http)
            with self.timed("verify"):
                after = await self.verify(http, before)
            if args.measure_on_signal and (args.queries or args.watch):
                with self.timed("held"):
                    await self.hold_until_signalled()
            if args.queries:
                with self.timed("queries"):
                    await self.run_queries(admin)
            if args.watch:
                with self.timed("watch"):
                    self.watched = await self.watch(http)
        except (aiohttp.ClientError, ApiError, RuntimeError) as exc:
            # The node went away (or refused the data center): still report what was done.
            self.failure = f"{type(exc).__name__}: {exc}"
            self.live.line(f"stopped early: {self.failure}")
            return
        finally:
            await events.close()
            await driver.close()
        cpu = sample(vms_done, "process_cpu_seconds_total") - cpu_before
        wall = self.phases["vms"]
        self.node = {
            "rss_mib": round(sample(after, "process_resident_memory_bytes") / 2**20, 1),
            "cpu_s_during_vms": round(cpu, 2),
            "cpu_share_during_vms": round(cpu / wall, 2) if wall else 0.0,
            "cpu_ms_per_vm": round(cpu * 1000 / self.vms_created, 2) if self.vms_created else 0.0,
        }

    def timed(self, phase: str) -> _Timed:
        return _Timed(self.phases, phase)

    async def add_hosts(self, driver: Driver, dc: dict[str, Any]) -> None:
        count = 1 if self.args.fast_hosts else self.args.hosts
        phase = self.live.phase("hosts", count)

        def done(answer: Answer, seconds: float) -> None:
            failed = self.errors.add_answer(answer)
            if not failed:
                self.hosts_added += 1
                self.latency["add_host_job"].add(seconds)
                if self.first_host is None:
                    self.first_host = answer.body["inventory"]["uuid"]
            phase.advance(failed=failed)

        await add_hosts(
            driver,
            dc["cluster"]["uuid"],
            range(count),
            prefix=self.prefix,
            parallel=self.args.host_parallel,
            done=done,
        )

    async def create_vms(self, driver: Driver, dc: dict[str, Any]) -> None:
        phase = self.live.phase("vms", self.args.vms)
        indexes = iter(range(self.args.vms))
        loop = asyncio.get_running_loop()

        async def worker(client: ApiClient) -> None:
            for i in indexes:
                started = loop.time()
                try:
                    accepted = await driver.request(
                        client, "POST", "/vm-instances", vm_body(dc, f"{self.prefix}-vm-{i}")
                    )
                    self.latency["create_vm_202"].add(loop.time() - started)
                    answer = await driver.follow(client, accepted)
                except (aiohttp.ClientError, TimeoutError) as exc:
                    self.errors.add_exception(exc)
                    phase.advance(failed=True)
                    continue
                failed = self.errors.add_answer(answer)
                if not failed:
                    self.vms_created += 1
                    self.latency["create_vm_job"].add(loop.time() - started)
                    if self.first_vm is None:
                        self.first_vm = answer.body["inventory"]
                phase.advance(failed=failed)

        workers = min(self.args.concurrency, self.args.vms)
        clients = driver.clients
        await asyncio.gather(*(worker(clients[i % len(clients)]) for i in range(workers)))

    async def size_nfs_share(self, http: aiohttp.ClientSession) -> None:
        """Room on the simulated NFS share for every VM's root volume (its default, 10 TiB,
        holds 160,000 of them): what an operator sizing storage for the run would do."""
        if self.simulator_url is None:
            return
        need = (self.args.vms + self.args.fast_vms + 1) * Shape().image_size
        body = {"url": nfs_url(self.prefix), "capacity": max(need * 5 // 4, 10 * 2**40)}
        async with http.post(f"{self.simulator_url}/simulator/nfs", json=body) as resp:
            if resp.status != 200:
                raise RuntimeError(f"the simulator refused the NFS share: {await resp.text()}")

    def _fast_path(self) -> tuple[str, str]:
        # parse_args made sure of both.
        assert self.db_url is not None
        assert self.simulator_url is not None
        return self.db_url, self.simulator_url

    async def copy_hosts(self) -> None:
        db_url, simulator_url = self._fast_path()
        if self.first_host is None:
            raise RuntimeError("the API made no host to copy")
        hosts = [NewHost(f"{self.prefix}-host-{i}", host_ip(i)) for i in range(1, self.args.hosts)]
        phase = self.live.phase("hosts (fast path)", len(hosts))
        done = 0

        def progress(n: int) -> None:
            nonlocal done
            phase.advance_by(n - done)
            done = n

        copied = await clone_hosts(db_url, simulator_url, self.first_host, hosts, progress)
        self.hosts_copied = len(copied)

    async def copy_vms(self, admin: ApiClient, http: aiohttp.ClientSession) -> None:
        db_url, simulator_url = self._fast_path()
        vm = self.first_vm
        if vm is None:
            raise RuntimeError("the API made no VM to copy")
        host = await admin.request("GET", f"/hosts/{vm['hostUuid']}")
        host_ip_label = host.body["inventories"][0]["managementIp"]
        async with http.get(f"{simulator_url}/simulator/hosts/{host_ip_label}") as resp:
            machine = await resp.json()
        placements = await spread(db_url, self.args.fast_vms, vm["cpuNum"], vm["memorySize"])
        phase = self.live.phase("vms (fast path)", len(placements))
        done = 0

        def progress(n: int) -> None:
            nonlocal done
            phase.advance_by(n - done)
            done = n

        self.vms_copied = await clone_vms(
            db_url,
            simulator_url,
            vm["uuid"],
            machine["vms"][vm["uuid"]]["name"],
            placements,
            lambda i: f"{self.prefix}-fast-vm-{i}",
            progress,
        )

    async def hold_until_signalled(self) -> None:
        signalled = asyncio.Event()
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGUSR1, signalled.set)
        self.live.line(f"built; the queries and the watch wait for: kill -USR1 {os.getpid()}")
        try:
            await signalled.wait()
        finally:
            loop.remove_signal_handler(signal.SIGUSR1)

    async def run_queries(self, admin: ApiClient) -> None:
        assert self.db_url is not None  # parse_args
        hosts, ips = await sample_targets(self.db_url)
        phase = self.live.phase("queries", 2 * self.args.queries)
        self.queried = await run_queries(
            admin,
            hosts,
            ips,
            self.args.queries,
            self.args.query_concurrency,
            self.errors,
            lambda failed: phase.advance(failed=failed),
        )

    async def watch(self, http: aiohttp.ClientSession) -> dict[str, float]:
        """The node with no API load for ``--watch`` s: what pinging every host costs."""
        seconds = self.args.watch
        if self.args.watch_ping_interval:
            admin = ApiClient(self.urls[0], http)
            await admin.login("admin", self.password)
            interval = self.args.watch_ping_interval
            await set_global_config(admin, "host", "ping.interval", interval)
            # A round is spread over most of the interval: watch from the second one.
            self.live.line(f"host ping.interval {interval:g} s; one round before watching")
            await asyncio.sleep(interval)
        self.live.line(f"watching the node for {seconds:g} s (pings only)")
        first, sim_first = await self.scrape(http), await self.simulator_stats(http)
        await asyncio.sleep(seconds)
        last, sim_last = await self.scrape(http), await self.simulator_stats(http)

        def delta(name: str, **labels: str) -> float:
            return sample(last, name, **labels) - sample(first, name, **labels)

        def sim_delta(key: str, path: str | None = None) -> float:
            before, after = sim_first, sim_last
            if path is not None:
                before, after = before.get("commands", {}), after.get("commands", {})
                key = path
            return float(after.get(key, 0)) - float(before.get(key, 0))

        pings = delta("zstack_agent_call_seconds_count", command="/host/ping")
        connected = sample(last, "zstack_hosts", status="Connected", state="Enabled")
        interval = await self.ping_interval(http)
        figures = {
            "seconds": seconds,
            "cpu_share": round(delta("process_cpu_seconds_total") / seconds, 3),
            "rss_mib": round(sample(last, "process_resident_memory_bytes") / 2**20, 1),
            "pings_per_s": round(pings / seconds, 1),
            # Every host once per interval: what keeping them all pinged takes.
            "pings_needed_per_s": round(connected / interval, 1) if interval else 0.0,
            "ping_failures": delta("zstack_agent_call_errors_total", command="/host/ping"),
            "vm_syncs_asked_apart_per_s": round(
                delta("zstack_agent_call_seconds_count", command="/vm/vmsync") / seconds, 1
            ),
            "hosts_connected": connected,
        }
        if pings:
            # CPU per ping (its VM sync included) holds under a busier machine better than
            # pings/s does.
            figures["node_cpu_ms_per_ping"] = round(
                1000 * delta("process_cpu_seconds_total") / pings, 3
            )
        if sim_first and sim_last:
            figures["simulator_cpu_share"] = round(sim_delta("cpuSeconds") / seconds, 3)
            if pings:
                figures["simulator_cpu_ms_per_ping"] = round(
                    1000 * sim_delta("cpuSeconds") / pings, 3
                )
        return figures

    async def simulator_stats(self, http: aiohttp.ClientSession) -> dict[str, Any]:
        if self.simulator_url is None:
            return {}
        async with http.get(f"{self.simulator_url}/simulator/stats") as resp:
            answer = await resp.json()
        return answer if isinstance(answer, dict) else {}

    async def ping_interval(self, http: aiohttp.ClientSession) -> float:
        if self.args.watch_ping_interval:
            return float(self.args.watch_ping_interval)
        admin = ApiClient(self.urls[0], http)
        await admin.login("admin", self.password)
        return float(await global_config(admin, "host", "ping.interval"))

    async def verify(self, http: aiohttp.ClientSession, before: Samples) -> Samples:
        """Scrape until the node's counts show the work done (its host and VM counts are
        cached a few seconds), at most SETTLE_S; record expected and reported figures."""
        deadline = time.monotonic() + SETTLE_S
        while True:
            after = await self.scrape(http)
            self.checks = self._checks(before, after)
            if all(c["expected"] == c["reported"] for c in self.checks.values()):
                return after
            if time.monotonic() > deadline:
                return after
            await asyncio.sleep(0.5)

    def _checks(self, before: Samples, after: Samples) -> dict[str, dict[str, float]]:
        def delta(name: str, **labels: str) -> float:
            return sample(after, name, **labels) - sample(before, name, **labels)

        api = "zstack_api_requests_total"
        chains = delta("zstack_flow_chain_seconds_count", chain="vm-create") - delta(
            "zstack_flow_chain_failures_total", chain="vm-create"
        )
        figures = {
            "AddKVMHost succeeded": (
                self.hosts_added,
                delta(api, api="AddKVMHost", result="success"),
            ),
            "hosts Connected": (
                self.hosts_added + self.hosts_copied,
                delta("zstack_hosts", status="Connected", state="Enabled"),
            ),
            "CreateVmInstance succeeded": (
                self.vms_created,
                delta(api, api="CreateVmInstance", result="success"),
            ),
            "vm-create chains succeeded": (self.vms_created, chains),
            "VMs Running": (
                self.vms_created + self.vms_copied,
                delta("zstack_vm_instances", state="Running"),
            ),
        }
        return {
            name: {"expected": float(expected), "reported": reported}
            for name, (expected, reported) in figures.items()
        }

    def summary(self) -> dict[str, Any]:
        args = self.args
        matches = bool(self.checks) and all(
            c["expected"] == c["reported"] for c in self.checks.values()
        )
        hosts_s, vms_s = self.phases.get("hosts", 0.0), self.phases.get("vms", 0.0)
        return {
            "sizes": {"hosts": args.hosts, "vms": args.vms, "concurrency": args.concurrency},
            "global_configs": [
                *([f"host:ping.interval={args.ping_interval}"] if args.ping_interval else []),
                *args.global_config,
                *(
                    [f"host:ping.interval={args.watch_ping_interval} (watch)"]
                    if args.watch_ping_interval
                    else []
                ),
            ],
            "node": self.urls if args.url else "embedded, started by the driver",
            "phases_s": {name: round(s, 2) for name, s in self.phases.items()},
            "hosts": {
                "added": self.hosts_added,
                "per_s": round(self.hosts_added / hosts_s, 1) if hosts_s else 0.0,
                "copied_by_fast_path": self.hosts_copied,
            },
            "vms": {
                "created": self.vms_created,
                "per_s": round(self.vms_created / vms_s, 1) if vms_s else 0.0,
                "copied_by_fast_path": self.vms_copied,
            },
            "fast_path_phases": [p for p in ("hosts_fast", "vms_fast") if p in self.phases],
            "queries": {name: lat.summary() for name, lat in self.queried.items()},
            "watch": self.watched,
            "api_latency": {name: lat.summary() for name, lat in self.latency.items()},
            "errors": dict(self.errors.by_code),
            "first_errors": self.errors.first,
            "node_process": self.node,
            "metrics": {"checks": self.checks, "matches": matches},
            "failure": self.failure,
            "ok": matches and self.errors.total == 0 and self.failure is None,
        }


class _Timed:
    def __init__(self, phases: dict[str, float], name: str) -> None:
        self.phases, self.name = phases, name

    def __enter__(self) -> None:
        self.started = time.monotonic()

    def __exit__(self, *exc: object) -> None:
        self.phases[self.name] = time.monotonic() - self.started


async def run(args: argparse.Namespace) -> dict[str, Any]:
    async with AsyncExitStack() as stack:
        started = time.monotonic()
        live = stack.enter_context(LiveProgress(force_plain=args.plain))
        if args.url:
            urls, password = list(args.url), args.password
            db_url, simulator_url = args.db_url, args.simulator_url
        else:
            workdir = args.workdir
            if workdir is None:
                workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="stress-")))
            workdir.mkdir(parents=True, exist_ok=True)
            password = secrets.token_urlsafe(16)
            live.line(f"starting a simulator and an embedded node in {workdir}")
            node = await stack.enter_async_context(embedded_node(workdir, password))
            urls, db_url, simulator_url = [node.url], node.db_url, node.simulator_url
        http = await stack.enter_async_context(
            aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=None),
                connector=aiohttp.TCPConnector(limit=args.concurrency + args.host_parallel + 10),
            )
        )
        stress = Run(args, urls, live, db_url, simulator_url)
        stress.phases["start"] = time.monotonic() - started
        await stress.go(http, password)
        summary = stress.summary()
        for code, n in summary["errors"].items():
            live.line(f"{n} errors {code}: {summary['first_errors'][code]}")
        return summary


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    summary = asyncio.run(run(args))
    print(json.dumps(summary), flush=True)
    sys.exit(0 if summary["ok"] else 1)
