"""Two management-node processes on MariaDB + RabbitMQ, watched by a third node in the test.

What an operator of a cluster relies on: every node's queues exist under ZStack's names,
messages about a resource reach its ring owner whoever sends them, a killed node is evicted
within ``interval x missCount``, calls in flight to it fail at once, and its resources move
to the survivors.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.mariadb import fresh_mariadb
from tests.support.probe_plugin import (
    APIProbeWhoOwnsMsg,
    ProbeNodeReply,
    ProbeRelaySleepMsg,
    ProbeRelayWhoOwnsMsg,
    ProbeSleepMsg,
    ProbeTakeoversMsg,
    ProbeTakeoversReply,
)
from tests.support.processes import NodeProcess, node_env, run_cli, start_node_process
from tests.support.rabbit import fresh_vhost, rabbitmqctl, require_rabbitmq, vhost_of
from zstackpy.core.config.messages import UpdateGlobalConfigMsg
from zstackpy.core.errors import SysErr
from zstackpy.core.ids import new_uuid
from zstackpy.core.settings import NodeSettings
from zstackpy.node.node import ManagementNode
from zstackpy.services.managementnode.messages import (
    GetManagementNodeInfoMsg,
    GetManagementNodeInfoReply,
    WhoOwnsResourceMsg,
    WhoOwnsResourceReply,
)

pytestmark = pytest.mark.real_server

INTERVAL = 0.5
MISS_COUNT = 3
WINDOW = INTERVAL * MISS_COUNT
MARGIN = 1.5  # one check round, a DB round trip, process scheduling on a busy 2-core box
PROBE = "tests.support.probe_plugin:plugin"
NODE_SERVICES = {"managementNode", "globalConfig", "probe"}  # api.portal: one shared queue


@dataclass
class Cluster:
    watcher: ManagementNode
    a: NodeProcess
    b: NodeProcess
    vhost: str


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[Cluster]:
    require_rabbitmq()
    async with fresh_mariadb() as db_url, fresh_vhost() as bus_url:
        env = node_env(
            ZSTACK_DB_URL=db_url,
            ZSTACK_BUS_URL=bus_url,
            ZSTACK_PLUGINS=PROBE,
            ZSTACK_DATA_DIR=str(tmp_path),
        )
        code, _, err = await run_cli("db", "upgrade", env=env)
        assert code == 0, err
        watcher = ManagementNode(
            NodeSettings(db_url=db_url, bus_url=bus_url, plugins=[PROBE], data_dir=tmp_path),
            serve_http=False,
        )
        await watcher.start()
        processes: list[NodeProcess] = []
        try:
            for name, value in (
                ("heartbeatInterval", INTERVAL),
                ("heartbeatMissCount", MISS_COUNT),
            ):
                reply = await watcher.context.bus.call(
                    UpdateGlobalConfigMsg(category="node", name=name, value=str(value))
                )
                reply.raise_if_error()
            for name in ("a", "b"):
                processes.append(await start_node_process(env, tmp_path / f"node-{name}.log"))
            a, b = processes
            await _wait_for(lambda: watcher.context.ring.nodes == {watcher.uuid, a.uuid, b.uuid})
            yield Cluster(watcher, a, b, vhost_of(bus_url))
        finally:
            for proc in processes:
                await proc.terminate()
            await watcher.stop()


async def _wait_for(predicate: object, timeout: float = 20.0) -> float:
    """Poll ``predicate`` until true; returns the seconds it took."""
    assert callable(predicate)
    started = time.monotonic()
    while not predicate():
        if time.monotonic() - started > timeout:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.02)
    return time.monotonic() - started


def _owned_by(node: ManagementNode, owner: str, count: int = 5) -> list[str]:
    found: list[str] = []
    while len(found) < count:
        candidate = new_uuid()
        if node.context.ring.owner(candidate) == owner:
            found.append(candidate)
    return found


async def test_each_node_has_its_queues_and_one_shared_portal(cluster: Cluster) -> None:
    listing = await rabbitmqctl("list_queues", "-p", cluster.vhost, "-q", "name", "consumers")
    consumers = dict(line.split() for line in listing.splitlines() if line.strip())
    queues = set(consumers)
    for node_uuid in (cluster.a.uuid, cluster.b.uuid, cluster.watcher.uuid):
        for service in NODE_SERVICES:
            assert f"zstack.message.{service}.{node_uuid}" in queues
    portals = [q for q in queues if q.startswith("zstack.message.api.portal")]
    assert portals == ["zstack.message.api.portal"]
    assert consumers["zstack.message.api.portal"] == "3"  # every node takes API messages


async def test_api_messages_go_through_the_portal_to_the_owner(cluster: Cluster) -> None:
    bus = cluster.watcher.context.bus
    ring = cluster.watcher.context.ring
    for _ in range(30):
        resource = new_uuid()
        reply = await bus.request(APIProbeWhoOwnsMsg(resource_uuid=resource), ProbeNodeReply)
        assert reply.node_uuid == ring.owner(resource)


async def test_a_resource_is_handled_by_its_owner_whoever_sends(cluster: Cluster) -> None:
    bus = cluster.watcher.context.bus
    ring = cluster.watcher.context.ring
    owners = set()
    for _ in range(30):
        resource = new_uuid()
        owner = ring.owner(resource)
        owners.add(owner)
        direct = await bus.request(WhoOwnsResourceMsg(resource_uuid=resource), WhoOwnsResourceReply)
        assert direct.node_uuid == owner
        for sender in (cluster.a.uuid, cluster.b.uuid):
            relayed = await bus.call(ProbeRelayWhoOwnsMsg(resource_uuid=resource), node=sender)
            relayed.raise_if_error()
            assert isinstance(relayed, WhoOwnsResourceReply)
            assert relayed.node_uuid == owner
    assert owners == {cluster.watcher.uuid, cluster.a.uuid, cluster.b.uuid}


async def test_killed_node_is_evicted_and_its_work_moves(cluster: Cluster) -> None:
    watcher = cluster.watcher
    bus = watcher.context.bus
    victim, survivor = cluster.b, cluster.a
    resources = _owned_by(watcher, victim.uuid)
    # Calls in flight to the victim from this node and from the survivor process.
    in_flight = [
        asyncio.create_task(bus.call(ProbeSleepMsg(resource_uuid=r, sleep_s=120), timeout=60))
        for r in resources
    ]
    relayed = [
        asyncio.create_task(
            bus.call(
                ProbeRelaySleepMsg(resource_uuid=r, sleep_s=120, timeout_s=60),
                node=survivor.uuid,
                timeout=90,
            )
        )
        for r in resources
    ]
    await _wait_for(lambda: bus.in_flight(victim.uuid) == len(resources), timeout=5)
    await asyncio.sleep(0.2)  # let the victim take the messages off its queue

    killed_at = time.monotonic()
    await victim.kill()
    replies = await asyncio.wait_for(
        asyncio.gather(*in_flight, *relayed), timeout=WINDOW + MARGIN + 5
    )
    failed_after = time.monotonic() - killed_at
    for reply in replies:
        assert not reply.success
        assert reply.error is not None
        assert reply.error.code == SysErr.MANAGEMENT_NODE_UNAVAILABLE
    assert failed_after < WINDOW + MARGIN, f"calls failed {failed_after:.2f}s after the kill"
    assert victim.uuid not in watcher.context.ring

    # The survivor process evicted it too.
    async def survivor_ring() -> list[str]:
        info = await bus.call(GetManagementNodeInfoMsg(), node=survivor.uuid)
        info.raise_if_error()
        assert isinstance(info, GetManagementNodeInfoReply)
        return info.ring

    deadline = time.monotonic() + MARGIN
    while victim.uuid in await survivor_ring() and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert set(await survivor_ring()) == {watcher.uuid, survivor.uuid}

    # New messages about the victim's resources go to a live node: their new ring owner.
    for resource in resources:
        owner = watcher.context.ring.owner(resource)
        assert owner in (watcher.uuid, survivor.uuid)
        moved = await bus.request(ProbeSleepMsg(resource_uuid=resource), ProbeNodeReply)
        assert moved.node_uuid == owner

    # The survivor's takeover hook ran for the victim's departure.
    takeovers = await bus.call(ProbeTakeoversMsg(), node=survivor.uuid)
    assert isinstance(takeovers, ProbeTakeoversReply)
    assert victim.uuid in takeovers.left


async def test_node_whose_row_is_deleted_stops_serving(cluster: Cluster) -> None:
    from sqlalchemy import delete

    from zstackpy.core.db import ManagementNodeVO

    target = cluster.a
    async with cluster.watcher.context.db.session() as session, session.begin():
        await session.execute(delete(ManagementNodeVO).where(ManagementNodeVO.uuid == target.uuid))
    code = await asyncio.wait_for(target.proc.wait(), timeout=INTERVAL * 2 + MARGIN + 5)
    assert code == 3, target.log.read_text()
