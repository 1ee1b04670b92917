"""The API of a two-node cluster (two ``zstackpy run`` processes on MariaDB + RabbitMQ),
driven only over HTTP, as clients and load balancers use it.

What a client behind a load balancer relies on: a session from one node works on the
other; any node takes any API about any resource, whichever node owns it in the ring; a
job is polled on any node; the event stream of one node shows what happened through the
other; and a job whose node is killed ends Failed (SYS.1012) instead of Processing forever.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.support.api_client import Answer, ApiClient
from tests.support.mariadb import fresh_mariadb
from tests.support.processes import NodeProcess, node_env, run_cli, start_node_process
from tests.support.rabbit import fresh_vhost, require_rabbitmq
from tests.support.sse import open_stream
from zstackpy.core.ids import new_uuid

pytestmark = pytest.mark.real_server

ADMIN_PASSWORD = "cluster-admin-pw"
PROBE = "tests.support.probe_plugin:plugin"
INTERVAL = "0.5"  # heartbeat: a killed node is evicted within 0.5 s x missCount (3)
ZONE_RPC = "org.zstack.header.zone"


@dataclass
class ApiCluster:
    a: NodeProcess
    b: NodeProcess
    http: aiohttp.ClientSession
    session_uuid: str

    def base(self, node: NodeProcess) -> str:
        return f"http://127.0.0.1:{node.port}"

    def client(self, node: NodeProcess, *, session: bool = True) -> ApiClient:
        return ApiClient(
            self.base(node), self.http, session_uuid=self.session_uuid if session else None
        )


async def _health_ring(http: aiohttp.ClientSession, node: NodeProcess) -> set[str]:
    async with http.get(f"http://127.0.0.1:{node.port}/health") as resp:
        return set((await resp.json())["ring"])


async def _until(check: Any, timeout: float = 20.0) -> None:
    """Await ``check()`` until it is true."""
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.05)


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[ApiCluster]:
    require_rabbitmq()
    async with fresh_mariadb() as db_url, fresh_vhost() as bus_url, aiohttp.ClientSession() as http:
        env = node_env(
            ZSTACK_DB_URL=db_url,
            ZSTACK_BUS_URL=bus_url,
            ZSTACK_ADMIN_PASSWORD=ADMIN_PASSWORD,
            ZSTACK_PLUGINS=PROBE,
            ZSTACK_DATA_DIR=str(tmp_path),
        )
        code, _, err = await run_cli("db", "upgrade", env=env)
        assert code == 0, err
        processes: list[NodeProcess] = []
        try:
            a = await start_node_process(env, tmp_path / "node-a.log")
            processes.append(a)
            admin = ApiClient(f"http://127.0.0.1:{a.port}", http)
            session = await admin.login("admin", ADMIN_PASSWORD)
            # Before B starts: B reads it from the database, A is told over the bus.
            changed = await admin.action(
                "/global-configurations/node/heartbeatInterval/actions",
                "updateGlobalConfig",
                {"value": INTERVAL},
            )
            assert changed.status == 200, changed.body
            b = await start_node_process(env, tmp_path / "node-b.log")
            processes.append(b)
            both = {a.uuid, b.uuid}

            async def joined() -> bool:
                return all([await _health_ring(http, n) == both for n in (a, b)])

            await _until(joined)
            yield ApiCluster(a, b, http, session)
        finally:
            for proc in processes:
                await proc.terminate()


async def _owner(client: ApiClient, resource_uuid: str) -> str:
    answer = await client.request("GET", f"/probe/who-owns/{resource_uuid}")
    assert answer.status == 200, answer.body
    return str(answer.body["node_uuid"])


async def _owned(client: ApiClient, owners: set[str], per_owner: int) -> list[str]:
    """UUIDs that ``owners`` own in the ring, ``per_owner`` each, alternating owners."""
    found: dict[str, list[str]] = {owner: [] for owner in owners}
    while any(len(uuids) < per_owner for uuids in found.values()):
        candidate = new_uuid()
        uuids = found.get(await _owner(client, candidate))
        if uuids is not None and len(uuids) < per_owner:
            uuids.append(candidate)
    return [uuid for pair in zip(*found.values(), strict=True) for uuid in pair]


async def _finish_on(client: ApiClient, accepted: Answer) -> Answer:
    """Poll the job that ``accepted`` started on the node of ``client``, not the one that
    took the request."""
    assert accepted.status == 202, accepted.body
    job_path = "/zstack/v1/api-jobs/" + accepted.body["location"].rsplit("/", 1)[1]
    moved = Answer(accepted.status, {**accepted.body, "location": client.base + job_path})
    return await client.finish(moved)


async def _rpc(client: ApiClient, java_class: str, fields: dict[str, Any]) -> dict[str, Any]:
    body = {java_class: {**fields, "session": {"uuid": client.session_uuid}}}
    async with client.http.post(f"{client.base}/zstack/api", json=body) as resp:
        assert resp.status == 200
        answer: dict[str, Any] = await resp.json()
        return answer


def _rpc_result(answer: dict[str, Any]) -> dict[str, Any]:
    ((_, inner),) = json.loads(answer["result"]).items()
    assert inner["success"] is True, inner
    result: dict[str, Any] = inner
    return result


async def test_any_node_serves_any_resource_with_one_session(cluster: ApiCluster) -> None:
    a, b = cluster.client(cluster.a), cluster.client(cluster.b)
    # The session A issued works on B: sessions live in the shared database.
    assert (await b.query("/zones")).status == 200
    listed = await b.query("/management-nodes")
    assert {n["uuid"] for n in listed.body["inventories"]} == {cluster.a.uuid, cluster.b.uuid}

    # Zones owned by each ring member, created through alternating nodes and then updated,
    # extended, queried and deleted through the other one.
    zones = await _owned(a, {cluster.a.uuid, cluster.b.uuid}, per_owner=3)
    async with open_stream(cluster.http, b.base, cluster.session_uuid) as b_stream:
        for index, zone in enumerate(zones):
            here, there = (a, b) if index % 2 == 0 else (b, a)
            accepted = await here.request(
                "POST", "/zones", json={"params": {"name": f"z{index}", "resourceUuid": zone}}
            )
            created = await _finish_on(there, accepted)
            assert created.status == 200, created.body
            assert created.body["inventory"]["uuid"] == zone

            renamed = await there.action(
                f"/zones/{zone}/actions", "updateZone", {"name": f"zone-{index}"}
            )
            assert renamed.body["inventory"]["name"] == f"zone-{index}", renamed.body
            cluster_inv = await there.inventory(
                "/clusters", {"zoneUuid": zone, "name": f"c{index}", "hypervisorType": "KVM"}
            )
            found = await here.query("/zones", f"uuid={zone}", f"cluster.name=c{index}")
            assert [z["name"] for z in found.body["inventories"]] == [f"zone-{index}"]
            in_zone = await there.query("/clusters", f"zoneUuid={zone}")
            assert [c["uuid"] for c in in_zone.body["inventories"]] == [cluster_inv["uuid"]]

        # B's stream saw what went through A: events cross nodes on the bus.
        seen = await b_stream.until(
            lambda e: e.name == "resourceChanged" and e.data["resourceUuid"] == zones[0]
        )
        assert seen.data["change"] == "created"
        done = await b_stream.until(
            lambda e: e.name == "jobCompleted" and e.data["resourceUuid"] == zones[0]
        )
        assert (done.data["apiName"], done.data["state"]) == ("CreateZone", "Done")

    # The legacy RPC front-end of B on a zone created through A: a query (sync) and an
    # update (async, its result polled on A).
    rpc_b = cluster.client(cluster.b)
    queried = await _rpc(
        rpc_b,
        f"{ZONE_RPC}.APIQueryZoneMsg",
        {"conditions": [{"name": "uuid", "op": "=", "value": zones[0]}]},
    )
    assert [z["name"] for z in _rpc_result(queried)["inventories"]] == ["zone-0"]
    started = await _rpc(rpc_b, f"{ZONE_RPC}.APIUpdateZoneMsg", {"uuid": zones[0], "name": "rpc"})
    assert started["state"] in ("Processing", "Done")

    polled: dict[str, Any] = {}

    async def rpc_done() -> bool:
        async with cluster.http.get(f"{a.base}/zstack/api/result/{started['uuid']}") as resp:
            polled.update(await resp.json())
        return bool(polled["state"] == "Done")

    await _until(rpc_done, timeout=10)
    assert _rpc_result(polled)["inventory"]["name"] == "rpc"

    # Deletes through the other node; the cascade takes the clusters along.
    for index, zone in enumerate(zones):
        there = b if index % 2 == 0 else a
        assert (await there.delete(f"/zones/{zone}")).status == 200
    for client in (a, b):
        assert (await client.query("/zones", count="true")).body["total"] == 0
        assert (await client.query("/clusters", count="true")).body["total"] == 0

    # Logging out on B ends the session on A too.
    out = await b.request("DELETE", f"/accounts/sessions/{cluster.session_uuid}")
    assert out.status == 200, out.body
    refused = await a.query("/zones")
    assert (refused.status, refused.error["code"]) == (401, "ID.1001")


async def test_job_of_a_killed_node_fails_on_the_survivor(cluster: ApiCluster) -> None:
    survivor, victim = cluster.a, cluster.b
    on_survivor = cluster.client(survivor)
    on_victim = cluster.client(victim, session=False)  # the probe is sessionless
    # The victim takes the request and owns the resource: the job and the work are its own.
    (resource,) = await _owned(on_survivor, {victim.uuid}, per_owner=1)
    async with open_stream(cluster.http, on_survivor.base, cluster.session_uuid) as stream:
        accepted = await on_victim.request(
            "PUT", f"/probe/sleep/{resource}/actions", json={"probeSleep": {"sleepS": 60}}
        )
        assert accepted.status == 202, accepted.body
        job_uuid = accepted.body["location"].rsplit("/", 1)[1]
        # Still running, and visible as such from the survivor.
        await asyncio.sleep(0.3)
        polled = await on_survivor.request("GET", f"/api-jobs/{job_uuid}")
        assert polled.status == 202

        killed_at = time.monotonic()
        await victim.kill()
        failed = await _finish_on(on_survivor, accepted)
        assert failed.error["code"] == "SYS.1012", failed.body
        assert failed.error["details"]["node"] == victim.uuid
        # Evicted after 3 missed 0.5 s heartbeats, plus scheduling slack.
        assert time.monotonic() - killed_at < 6

        # The survivor announced the job's end on its stream.
        ended = await stream.until(
            lambda e: e.name == "jobCompleted" and e.data["jobUuid"] == job_uuid, timeout=10
        )
        assert ended.data["state"] == "Failed"
        assert ended.data["apiName"] == "ProbeSleep"
        assert ended.data["error"]["code"] == "SYS.1012"

    listed = await on_survivor.query("/management-nodes")
    assert [n["uuid"] for n in listed.body["inventories"]] == [survivor.uuid]


async def test_a_node_drained_over_the_api_ends_its_jobs_and_leaves(cluster: ApiCluster) -> None:
    keeper, drained = cluster.a, cluster.b
    on_keeper = cluster.client(keeper)
    on_drained = cluster.client(drained, session=False)  # the probe is sessionless
    (resource,) = await _owned(on_keeper, {drained.uuid}, per_owner=1)
    running = await on_drained.request(
        "PUT", f"/probe/sleep/{resource}/actions", json={"probeSleep": {"sleepS": 1.5}}
    )
    assert running.status == 202, running.body

    unknown = await on_keeper.action(
        f"/management-nodes/{'0' * 32}/actions", "drainManagementNode", {}
    )
    assert unknown.error["code"] == "SYS.1003", unknown.body
    answer = await on_keeper.action(
        f"/management-nodes/{drained.uuid}/actions", "drainManagementNode", {}
    )
    assert answer.status == 200, answer.body
    assert answer.body["managementNodeId"] == drained.uuid
    # The drained node ends the job it runs (no SYS.1012), then its process ends.
    finished = await _finish_on(on_keeper, running)
    assert finished.status == 200, finished.body
    assert await asyncio.wait_for(drained.proc.wait(), 30) == 0

    async def alone() -> bool:
        return await _health_ring(cluster.http, keeper) == {keeper.uuid}

    await _until(alone)
    listed = await on_keeper.query("/management-nodes")
    assert [n["uuid"] for n in listed.body["inventories"]] == [keeper.uuid]
