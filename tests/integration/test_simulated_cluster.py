"""Cluster mode with simulated hosts: two ``zstackpy run`` processes on MariaDB + RabbitMQ
share one ``python -m simulator`` process (``ZSTACK_SIMULATOR_URL``), as a test bed or a
scale run would. Hosts added through one node are pinged by the node that owns them; when
a node is killed, the survivor takes its hosts over and keeps them pinged, and a machine
that dies is marked Disconnected by whichever node owns it."""

from __future__ import annotations

import asyncio
import socket
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.support.api_client import ApiClient
from tests.support.datacenter import (
    DEFAULT_HOST_PASSWORD,
    DEFAULT_HOST_USERNAME,
    add_cluster,
    add_datacenter,
    add_zone,
    set_global_config,
    wait_for,
)
from tests.support.mariadb import fresh_mariadb
from tests.support.processes import REPO, NodeProcess, node_env, run_cli, start_node_process
from tests.support.rabbit import fresh_vhost, require_rabbitmq
from zstackpy.core.ids import new_uuid
from zstackpy.core.ring import Ring

pytestmark = pytest.mark.real_server

ADMIN_PASSWORD = "sim-cluster-pw"
HOST_IPS = [f"10.30.0.{i}" for i in range(1, 7)]


@dataclass
class SimCluster:
    a: NodeProcess
    b: NodeProcess
    sim_url: str
    http: aiohttp.ClientSession

    def admin(self, node: NodeProcess) -> ApiClient:
        return ApiClient(f"http://127.0.0.1:{node.port}", self.http)

    async def machine(self, address: str) -> dict[str, Any]:
        async with self.http.get(f"{self.sim_url}/simulator/hosts/{address}") as resp:
            assert resp.status == 200
            body: dict[str, Any] = await resp.json()
            return body

    async def pings(self, address: str) -> int:
        return int(((await self.machine(address)).get("commands") or {}).get("/host/ping", 0))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[SimCluster]:
    require_rabbitmq()
    port = _free_port()
    sim = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "simulator", "--port", str(port), cwd=REPO
    )
    sim_url = f"http://127.0.0.1:{port}"
    processes: list[NodeProcess] = []
    try:
        async with (
            fresh_mariadb() as db_url,
            fresh_vhost() as bus_url,
            aiohttp.ClientSession() as http,
        ):
            env = node_env(
                ZSTACK_DB_URL=db_url,
                ZSTACK_BUS_URL=bus_url,
                ZSTACK_ADMIN_PASSWORD=ADMIN_PASSWORD,
                ZSTACK_DATA_DIR=str(tmp_path),
                ZSTACK_SIMULATOR="1",
                ZSTACK_SIMULATOR_URL=sim_url,
            )
            code, _, err = await run_cli("db", "upgrade", env=env)
            assert code == 0, err
            a = await start_node_process(env, tmp_path / "node-a.log")
            processes.append(a)
            admin = ApiClient(f"http://127.0.0.1:{a.port}", http)
            await admin.login("admin", ADMIN_PASSWORD)
            # Before B starts, so both read them: fast eviction and fast pings.
            await set_global_config(admin, "node", "heartbeatInterval", 0.5)
            await set_global_config(admin, "host", "ping.interval", 0.3)
            await set_global_config(admin, "host", "ping.maxFailure", 2)
            b = await start_node_process(env, tmp_path / "node-b.log")
            processes.append(b)
            yield SimCluster(a, b, sim_url, http)
    finally:
        for proc in processes:
            await proc.terminate()
        sim.terminate()
        await sim.wait()


async def _statuses(admin: ApiClient) -> dict[str, str]:
    """Hosts' statuses, or {} while the cluster still routes to the killed node (SYS.1012
    until it is evicted): callers poll."""
    answer = await admin.request("GET", "/hosts")
    if answer.status != 200:
        assert answer.body["error"]["code"] == "SYS.1012", answer.body
        return {}
    return {h["managementIp"]: h["status"] for h in answer.body["inventories"]}


async def test_hosts_stay_pinged_when_a_node_dies(cluster: SimCluster) -> None:
    admin_a = cluster.admin(cluster.a)
    await admin_a.login("admin", ADMIN_PASSWORD)
    _, _, hosts = await add_datacenter(admin_a, "simc", HOST_IPS)
    for ip, host in zip(HOST_IPS, hosts, strict=True):
        machine = await cluster.machine(ip)
        assert machine["deployed"] is True
        assert machine["hostUuid"] == host["uuid"]

    # Both nodes ping: each host's ping count grows whichever node owns it.
    before = {ip: await cluster.pings(ip) for ip in HOST_IPS}

    async def all_pinged_since(mark: dict[str, int]) -> bool:
        return all([await cluster.pings(ip) > mark[ip] for ip in HOST_IPS])

    await wait_for(lambda: all_pinged_since(before), timeout=20)

    # Log in on B while A lives: a login is routed by account name, maybe to A.
    admin_b = cluster.admin(cluster.b)
    await admin_b.login("admin", ADMIN_PASSWORD)
    await cluster.a.kill()
    await asyncio.sleep(2.0)  # eviction: 0.5 s x 3 missed beats, then the next ping round
    after_takeover = {ip: await cluster.pings(ip) for ip in HOST_IPS}
    await wait_for(lambda: all_pinged_since(after_takeover), timeout=20)

    async def all_connected() -> bool:
        statuses = await _statuses(admin_b)
        return len(statuses) == len(HOST_IPS) and set(statuses.values()) == {"Connected"}

    await wait_for(all_connected, timeout=20)

    dead = HOST_IPS[0]
    async with cluster.http.put(
        f"{cluster.sim_url}/simulator/hosts/{dead}/alive", json={"alive": False}
    ) as resp:
        assert resp.status == 200

    async def dead_is_disconnected() -> bool:
        return (await _statuses(admin_b)).get(dead) == "Disconnected"

    await wait_for(dead_is_disconnected, timeout=20)
    statuses = await _statuses(admin_b)
    assert all(statuses[ip] == "Connected" for ip in HOST_IPS[1:])


async def test_a_jobs_trace_includes_chains_run_on_the_other_node(cluster: SimCluster) -> None:
    """AddKVMHost sent to node A for a host node B owns: the connect chain runs on B, and
    the job's trace (kept by A) still shows it."""
    admin = cluster.admin(cluster.a)
    await admin.login("admin", ADMIN_PASSWORD)
    zone = await add_zone(admin, "trace-zone")
    kvm = await add_cluster(admin, zone["uuid"], "trace-cluster")
    nodes = await admin.request("GET", "/management-nodes")
    assert nodes.status == 200, nodes.body
    ring = Ring([n["uuid"] for n in nodes.body["inventories"]])
    assert len(ring.nodes) == 2
    b_uuid = next(u for u in ring.nodes if u != cluster.a.uuid)
    host_uuid = next(u for u in (new_uuid() for _ in range(1000)) if ring.owner(u) == b_uuid)

    started = await admin.request(
        "POST",
        "/hosts/kvm",
        json={
            "params": {
                "name": "traced-host",
                "managementIp": "10.30.1.1",
                "clusterUuid": kvm["uuid"],
                "username": DEFAULT_HOST_USERNAME,
                "password": DEFAULT_HOST_PASSWORD,
                "resourceUuid": host_uuid,
            }
        },
    )
    assert started.status == 202, started.body
    job_uuid = started.body["location"].rstrip("/").rsplit("/", 1)[-1]
    answer = await admin.finish(started)
    assert answer.status == 200, answer.body

    trace = await admin.request("GET", f"/api-jobs/{job_uuid}/trace")
    assert trace.status == 200, trace.body
    chains = [t["chain"] for t in trace.body["traces"]]
    assert "host-connect" in chains, trace.body
