"""One chaos run: bring the system up, load it, strike one fault, check the invariants.

``ChaosRun(config).run()`` answers a ``Result`` (a row of the table, ``report.py``). The
system is child processes (``cluster.py``) on private servers (``servers.py``) in cluster
mode, so a fault never touches the machine's shared MariaDB and RabbitMQ.
"""

from __future__ import annotations

import asyncio
import logging
import random
import secrets
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from simulator.chaos import invariants
from simulator.chaos.cluster import Servers, SystemUnderTest
from simulator.chaos.faults import FAULTS, Fault
from simulator.chaos.servers import PrivateMariaDB, PrivateRabbitMQ
from simulator.chaos.workload import NoNodeError, Op, Rest, Workload
from simulator.stress.datacenter import add_hosts, build_base, host_ip
from simulator.stress.rest import ApiClient, Driver

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Config:
    fault: str
    workdir: Path
    nodes: int = 1  # > 1 or cluster=True: private MariaDB + RabbitMQ
    cluster: bool = False
    hosts: int = 4
    ops: int = 60
    concurrency: int = 8
    vm_pool: int = 12
    fault_seconds: float = 3.0
    heartbeat_interval: float = 1.0
    heartbeat_miss: int = 3
    ping_interval: float = 1.0
    settle_bound_s: float = 120.0
    converge_bound_s: float = 60.0
    seed: int = 11


@dataclass
class Result:
    fault: str
    mode: str
    load: str
    verdict: invariants.Verdict
    seconds: float
    consumers: dict[str, str] = field(default_factory=dict)  # node -> its health's view
    rings: dict[str, int] = field(default_factory=dict)  # node -> nodes in its ring
    # Of the jobs the drained node accepted: how they ended (node-drain only)
    drained_jobs: dict[str, int] = field(default_factory=dict)
    # What the nodes did while they held their agent commands (db-outage-long only)
    hold: dict[str, Any] = field(default_factory=dict)
    recovery_waited_on: str | None = None  # the last thing recovery waited for

    def to_dict(self) -> dict[str, Any]:
        v = self.verdict
        return {
            "fault": self.fault,
            "mode": self.mode,
            "load": self.load,
            "seconds": round(self.seconds, 1),
            "holds": v.holds,
            "violations": v.violations(),
            "duringFault": v.during_fault,
            "accepted": v.accepted,
            "succeeded": v.succeeded,
            "failed": v.failed,
            "lost": v.lost,
            "unclear": v.unclear,
            "hung": v.hung,
            "stuck": v.stuck,
            "disagreements": v.disagreements,
            "duplicates": v.duplicates,
            "recoveryS": v.recovery_s,
            "recoveryBoundS": v.recovery_bound_s,
            "errors": dict(v.errors),
            "consumers": self.consumers,
            "rings": self.rings,
            "liveNodes": len(self.rings),
            "drainedJobs": self.drained_jobs,
            "hold": self.hold,
            "recoveryWaitedOn": self.recovery_waited_on,
        }


@asynccontextmanager
async def private_servers(workdir: Path) -> AsyncIterator[Servers]:
    """A private mariadbd and RabbitMQ node for cluster runs, removed on the way out."""
    servers = Servers(PrivateMariaDB(workdir / "mariadb"), PrivateRabbitMQ(workdir / "rabbitmq"))
    try:
        await asyncio.gather(servers.db.setup(), servers.bus.setup())
        yield servers
    finally:
        await servers.bus.close()
        await servers.db.close()


class ChaosRun:
    def __init__(self, config: Config, shared: Servers | None = None) -> None:
        self.config = config
        self.shared = shared  # private servers started once for several runs
        self.fault: Fault = FAULTS[config.fault]
        if self.fault.needs_cluster and not (config.cluster or config.nodes > 1):
            raise ValueError(f"fault {config.fault} needs cluster mode (--nodes 2 or more)")
        self.password = secrets.token_hex(8)
        self.sut = SystemUnderTest(config.workdir, self.password)
        self.host_ips = [host_ip(i) for i in range(config.hosts)]
        self.http: aiohttp.ClientSession | None = None
        self.rest: Rest | None = None
        self.node_start_s = 0.0
        self.drained_url = ""  # the node a drain stopped (node-drain)
        self.hold: dict[str, Any] = {}  # db-outage-long: the hold's figures
        self.fault_violations: list[str] = []  # what the fault itself saw go wrong
        self.recovery_waited_on: str | None = None

    # ----- what faults use --------------------------------------------------------------

    @property
    def fault_seconds(self) -> float:
        return self.config.fault_seconds

    @property
    def heartbeat_window(self) -> float:
        return self.config.heartbeat_interval * self.config.heartbeat_miss

    @property
    def ping_interval(self) -> float:
        return self.config.ping_interval

    async def sim_put(self, path: str, body: dict[str, Any]) -> None:
        await self._sim("PUT", path, body)

    async def sim_post(self, path: str, body: dict[str, Any]) -> None:
        await self._sim("POST", path, body)

    async def sim_delete(self, path: str) -> None:
        await self._sim("DELETE", path, None)

    async def sim_commands(self) -> dict[str, int]:
        """Agent commands the simulator received so far, by path, over every machine."""
        counts: Counter[str] = Counter()
        for machine in await invariants.sim_machines(self._http(), self.sut.sim_url):
            counts.update(machine.get("commands") or {})
        return dict(counts)

    async def health_samples(self) -> list[bool]:
        """Each live node's ``/health`` now: ready (200) or not; no answer counts as not."""
        out = []
        for node in self.sut.live_nodes():
            try:
                async with self._http().get(f"{node.url}/health") as resp:
                    out.append(resp.status == 200)
            except aiohttp.ClientError:
                out.append(False)
        return out

    async def held_commands(self) -> int:
        """Agent commands the live nodes held (refused with SYS.1010), from ``/metrics``."""
        held = 0.0
        for node in self.sut.live_nodes():
            async with self._http().get(f"{node.url}/metrics") as resp:
                text = await resp.text()
            held += sum(
                sample.value
                for family in text_string_to_metric_families(text)
                for sample in family.samples
                if sample.name == "zstack_agent_call_errors_total"
                and sample.labels.get("code") == "SYS.1010"
            )
        return int(held)

    async def _sim(self, method: str, path: str, body: dict[str, Any] | None) -> None:
        assert self.http is not None
        url = f"{self.sut.sim_url}/simulator{path}"
        async with self.http.request(method, url, json=body) as resp:
            if resp.status != 200:
                raise RuntimeError(f"simulator {method} {path}: {resp.status} {await resp.text()}")

    # ----- the run ----------------------------------------------------------------------

    async def run(self) -> Result:
        cfg = self.config
        random.seed(cfg.seed)
        started = time.monotonic()
        cfg.workdir.mkdir(parents=True, exist_ok=True)
        async with AsyncExitStack() as stack:
            self.http = await stack.enter_async_context(aiohttp.ClientSession())
            if cfg.cluster or cfg.nodes > 1:
                servers = self.shared
                if servers is None:
                    servers = await stack.enter_async_context(private_servers(cfg.workdir))
                # A database and a vhost of its own, on servers other runs may have used.
                name = f"chaos_{cfg.fault.replace('-', '_')}_{secrets.token_hex(4)}"
                self.sut.servers = Servers(
                    servers.db,
                    servers.bus,
                    await servers.db.new_database(name),
                    await servers.bus.new_vhost(name),
                )
            stack.push_async_callback(self.sut.close)
            await self.sut.start_simulator()
            await self.sut.upgrade_db()
            t0 = time.monotonic()
            await self.sut.start_node()
            self.node_start_s = time.monotonic() - t0
            self.rest = Rest(self.http, self._urls, self.password)
            await self.rest.login()
            await self._configure()
            for _ in range(cfg.nodes - 1):
                await self.sut.start_node()
            dc = await self._build()
            verdict, records = await self._load_and_strike(dc)
            consumers, rings = await self._health()
            expected = cfg.nodes - (1 if self.fault.stops_a_node else 0)
            if len(rings) < expected:
                verdict.fault_violations.append(
                    f"{expected - len(rings)} of {cfg.nodes} nodes gone (evicted or died)"
                )
        mode = f"cluster x{cfg.nodes}" if self.sut.servers else "embedded"
        return Result(
            fault=cfg.fault,
            mode=mode,
            load=f"{cfg.ops} ops / {cfg.concurrency} clients / {cfg.hosts} hosts",
            verdict=verdict,
            seconds=time.monotonic() - started,
            consumers=consumers,
            rings=rings,
            drained_jobs=_outcomes(
                r for r in records if self.drained_url and r.node_url == self.drained_url
            ),
            hold=self.hold,
            recovery_waited_on=self.recovery_waited_on,
        )

    async def _health(self) -> tuple[dict[str, str], dict[str, int]]:
        """Each live node's own word (``/health``) on its bus consumers and its ring."""
        consumers, rings = {}, {}
        for node in self.sut.live_nodes():
            async with self._http().get(f"{node.url}/health") as resp:
                body = await resp.json()
            consumers[node.uuid] = str(body.get("checks", {}).get("consumers", "n/a"))
            rings[node.uuid] = len(body.get("ring", []))
        return consumers, rings

    def _urls(self) -> list[str]:
        return [n.url for n in self.sut.live_nodes()]

    async def _configure(self) -> None:
        cfg = self.config
        for category, name, value in (
            ("node", "heartbeatInterval", cfg.heartbeat_interval),
            ("node", "heartbeatMissCount", cfg.heartbeat_miss),
            ("host", "ping.interval", cfg.ping_interval),
            ("host", "ping.maxFailure", 2),
            ("vm", "transitionalCheckInterval", 2),
            # Orphan guests (a creation whose rollback could not reach the host) go after
            # 5 s of syncs: the database must agree with the hosts by the end.
            ("vm", "cleanUpStrangeVms", "true"),
            ("vm", "strangeVmGracePeriod", 5),
        ):
            await self._job(
                "PUT",
                f"/global-configurations/{category}/{name}/actions",
                {"updateGlobalConfig": {"value": str(value)}},
            )

    async def _job(self, method: str, path: str, body: Any) -> Any:
        assert self.rest is not None
        answer = await self.rest.call(method, path, body)
        if answer.status == 202:
            # The poll answers 202 {} while the job runs: its location is the first answer's.
            job = answer.body["location"].split("/zstack/v1", 1)[1]
        while answer.status == 202:
            await asyncio.sleep(0.1)
            answer = await self.rest.call("GET", job)
        if answer.status != 200:
            raise RuntimeError(f"{method} {path}: {answer.status} {answer.body}")
        return answer.body

    async def _build(self) -> dict[str, Any]:
        assert self.http is not None
        assert self.rest is not None
        client = ApiClient(self._urls()[0], self.http, self.rest.session)
        driver = Driver([client], in_flight=16, poll_interval=0.1)
        try:
            dc = await build_base(driver, client, "chaos", vms=self.config.vm_pool * 4)
            answers = await add_hosts(
                driver,
                dc["cluster"]["uuid"],
                range(self.config.hosts),
                prefix="chaos",
                parallel=8,
            )
        finally:
            await driver.close()
        failed = [a.body for a in answers if a.status != 200]
        if failed:
            raise RuntimeError(f"{len(failed)} hosts could not be added: {failed[0]}")
        return dc

    async def _load_and_strike(self, dc: dict[str, Any]) -> tuple[invariants.Verdict, list[Op]]:
        cfg = self.config
        assert self.rest is not None
        assert self.http is not None
        workload = Workload(
            self.rest, dc, cfg.ops, cfg.concurrency, cfg.vm_pool, follow_bound_s=cfg.settle_bound_s
        )
        load = asyncio.create_task(workload.run())
        # A random moment: once between a fifth and a half of the operations were taken.
        threshold = max(1, int(cfg.ops * random.uniform(0.2, 0.5)))  # noqa: S311
        while workload.accepted() < threshold and not load.done():
            workload.accepted_event.clear()
            await asyncio.wait({load, asyncio.create_task(workload.accepted_event.wait())},
                               return_when=asyncio.FIRST_COMPLETED)  # fmt: skip
        log.info("striking %s after %d accepted operations", cfg.fault, workload.accepted())
        struck_at = time.monotonic()
        healed_at = await self.fault.strike(self)
        verdict = invariants.Verdict(fault_violations=self.fault_violations)
        if self.fault.bound is not None:
            verdict.recovery_bound_s = round(self.fault.bound(self), 1)
        recovery = asyncio.create_task(self._recovered_after(healed_at))
        await load
        await workload.settle(cfg.settle_bound_s)
        verdict.recovery_s = await recovery
        invariants.count_jobs(workload.records, verdict, self.rest.hung)
        # In flight at some moment of the fault (for a kill: at the kill).
        verdict.during_fault = sum(
            1
            for op in workload.records
            if op.started <= healed_at and (op.ended is None or op.ended >= struck_at)
        )
        verdict.stuck = await invariants.eventually(
            lambda: invariants.stuck(self._rest()), cfg.converge_bound_s
        )
        verdict.disagreements = await invariants.eventually(
            lambda: invariants.disagreements(self._rest(), self._http(), self.sut.sim_url),
            cfg.converge_bound_s,
        )
        verdict.duplicates = await invariants.duplicates(
            self._http(), self.sut.sim_url, workload.records
        )
        return verdict, workload.records

    def _rest(self) -> Rest:
        assert self.rest is not None
        return self.rest

    def _http(self) -> aiohttp.ClientSession:
        assert self.http is not None
        return self.http

    async def _recovered_after(self, since: float) -> float | None:
        """Seconds from ``since`` until every live node is ready, every host Connected and
        pinged again since then; None if not within the settle bound. What it waited for
        last is kept (``recovery_waited_on``): a slow recovery says what held it."""
        pings_before = await self._pings()
        deadline = since + self.config.settle_bound_s
        while time.monotonic() < deadline:
            waiting = await self._not_serving(pings_before)
            if waiting is None:
                return round(time.monotonic() - since, 2)
            if waiting != self.recovery_waited_on:
                log.info("recovery waits for: %s", waiting)
                self.recovery_waited_on = waiting
            await asyncio.sleep(0.2)
        return None

    async def _not_serving(self, pings_before: dict[str, int]) -> str | None:
        """What is not back yet, or None."""
        http = self._http()
        for node in self.sut.live_nodes():
            try:
                async with http.get(f"{node.url}/health") as resp:
                    if resp.status != 200:
                        body = await resp.json()
                        return f"/health of node {node.index}: {body.get('reasons')}"
            except aiohttp.ClientError as exc:
                return f"/health of node {node.index}: {exc}"
        try:
            hosts = await invariants.query_all(self._rest(), "/hosts")
        except (RuntimeError, NoNodeError, TimeoutError) as exc:
            return f"the host query: {type(exc).__name__} {exc}"
        if len(hosts) != len(self.host_ips):
            return f"the host query: {len(hosts)} hosts"
        status = Counter(h["status"] for h in hosts if h["status"] != "Connected")
        if status:
            return f"hosts not Connected: {dict(status)}"
        pings = await self._pings()
        unpinged = [ip for ip in self.host_ips if pings.get(ip, 0) <= pings_before.get(ip, 0)]
        return f"{len(unpinged)} hosts not pinged again" if unpinged else None

    async def _pings(self) -> dict[str, int]:
        machines = await invariants.sim_machines(self._http(), self.sut.sim_url)
        return {m["address"]: int((m.get("commands") or {}).get("/host/ping", 0)) for m in machines}


def _outcomes(ops: Iterable[Op]) -> dict[str, int]:
    """``succeeded`` or the error code, counted."""
    counts: Counter[str] = Counter()
    for op in ops:
        counts[op.error_code or str(op.outcome)] += 1
    return dict(counts)
