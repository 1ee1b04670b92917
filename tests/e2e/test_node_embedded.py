"""An embedded node (SQLite + in-process bus) as an operator sees it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy import delete, select

from tests.support.probe_plugin import ProbeNodeReply, ProbeSleepMsg
from zstackpy.core.bus.inproc import InProcTransport
from zstackpy.core.config.messages import UpdateGlobalConfigMsg
from zstackpy.core.db import ManagementNodeVO
from zstackpy.core.errors import KernelErr, SysErr, ZError
from zstackpy.core.settings import NodeSettings
from zstackpy.node.node import ManagementNode, NodeState
from zstackpy.services.managementnode.messages import (
    GetManagementNodeInfoMsg,
    GetManagementNodeInfoReply,
)

Start = Callable[..., Any]
PROBE = "tests.support.probe_plugin:plugin"


async def _health(node: ManagementNode) -> tuple[int, dict[str, Any]]:
    assert node.http is not None
    async with (
        aiohttp.ClientSession() as client,
        client.get(f"http://127.0.0.1:{node.http.port}/health") as resp,
    ):
        return resp.status, await resp.json()


async def _set_config(node: ManagementNode, category: str, name: str, value: str) -> None:
    reply = await node.context.bus.call(
        UpdateGlobalConfigMsg(category=category, name=name, value=value)
    )
    reply.raise_if_error()


async def test_health_reports_uuid_and_ready(start_node: Start) -> None:
    node = await start_node()
    status, body = await _health(node)
    assert status == 200
    assert body["uuid"] == node.uuid
    assert body["state"] == "ready"
    assert body["ring"] == [node.uuid]
    assert body["checks"]["database"] == "ok"


async def test_stop_removes_the_node_row(start_node: Start) -> None:
    node = await start_node()
    db = node.context.db
    await node.stop()
    assert node.state is NodeState.STOPPED
    # The database object is closed with the node: look with a fresh one.
    from zstackpy.core.db import Database

    fresh = Database(node.settings.database_url)
    try:
        async with fresh.session() as session:
            rows = (await session.execute(select(ManagementNodeVO.uuid))).scalars().all()
    finally:
        await fresh.close()
    assert node.uuid not in rows
    del db


async def test_refuses_a_schema_not_at_head(node_settings: NodeSettings) -> None:
    node = ManagementNode(node_settings)
    with pytest.raises(ZError) as info:
        await node.start()
    assert info.value.code == KernelErr.DB_SCHEMA_NOT_AT_HEAD
    assert "zstackpy db upgrade" in info.value.description
    assert node.state is NodeState.STOPPED


async def test_bad_flow_file_stops_the_start_naming_file_and_line(
    migrated: NodeSettings, tmp_path: Path
) -> None:
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "broken.yaml").write_text("chain: demo\nsteps: [no-such-flow]\n")
    node = ManagementNode(migrated.model_copy(update={"flows_dir": flows}))
    with pytest.raises(ZError) as info:
        await node.start()
    assert info.value.code == KernelErr.FLOW_DEFINITION
    assert f"{flows / 'broken.yaml'}:2:" in str(info.value)
    assert "no-such-flow" in str(info.value)


async def test_plugin_breaking_an_extension_contract_stops_the_start(
    migrated: NodeSettings,
) -> None:
    node = ManagementNode(
        migrated.model_copy(update={"plugins": ["tests.support.bad_plugin:plugin"]})
    )
    with pytest.raises(ZError) as info:
        await node.start()
    assert info.value.code == KernelErr.PLUGIN_CONTRACT
    assert "take_over" in info.value.description


async def test_unknown_plugin_is_a_clear_start_error(migrated: NodeSettings) -> None:
    node = ManagementNode(migrated.model_copy(update={"plugins": ["no.such.module:plugin"]}))
    with pytest.raises(ZError) as info:
        await node.start()
    assert info.value.code == KernelErr.PLUGIN_LOAD
    assert "no.such.module" in info.value.description


async def test_two_nodes_share_the_ring_and_route_by_owner(start_node: Start) -> None:
    a = await start_node(plugins=[PROBE])
    b = await start_node(plugins=[PROBE])
    assert a.context.ring.nodes == b.context.ring.nodes == {a.uuid, b.uuid}
    for i in range(40):
        resource = f"{i:032x}"
        owner = a.context.ring.owner(resource)
        for sender in (a, b):
            reply = await sender.context.bus.request(
                ProbeSleepMsg(resource_uuid=resource), ProbeNodeReply
            )
            assert reply.node_uuid == owner
    info = await b.context.bus.request(GetManagementNodeInfoMsg(), GetManagementNodeInfoReply)
    assert info.node_uuid == b.uuid
    assert "probe" in info.services


async def test_silent_node_is_evicted_and_its_calls_fail_at_once(start_node: Start) -> None:
    a = await start_node(plugins=[PROBE])
    await _set_config(a, "node", "heartbeatInterval", "0.2")
    b = await start_node(plugins=[PROBE])
    window = 0.2 * 3
    owned_by_b = next(
        f"{i:032x}" for i in range(1000) if a.context.ring.owner(f"{i:032x}") == b.uuid
    )
    # A crash: B stops beating (its row stays) and stops answering.
    assert b.heartbeat is not None
    await b.heartbeat.stop(leave=False)
    transport = b.context.bus.transport
    assert isinstance(transport, InProcTransport)
    transport.broker.cancel(b.context.bus)
    started = time.monotonic()
    reply = await a.context.bus.call(ProbeSleepMsg(resource_uuid=owned_by_b), timeout=30)
    elapsed = time.monotonic() - started
    assert not reply.success
    assert reply.error is not None
    assert reply.error.code in (SysErr.MANAGEMENT_NODE_UNAVAILABLE, SysErr.UNDELIVERABLE)
    assert elapsed < window + 1.0
    deadline = time.monotonic() + window + 1.0
    while b.uuid in a.context.ring and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert b.uuid not in a.context.ring
    reply = await a.context.bus.request(ProbeSleepMsg(resource_uuid=owned_by_b), ProbeNodeReply)
    assert reply.node_uuid == a.uuid


async def test_in_flight_call_fails_when_owner_is_evicted(start_node: Start) -> None:
    a = await start_node(plugins=[PROBE])
    await _set_config(a, "node", "heartbeatInterval", "0.2")
    b = await start_node(plugins=[PROBE])
    owned_by_b = next(
        f"{i:032x}" for i in range(1000) if a.context.ring.owner(f"{i:032x}") == b.uuid
    )
    call = asyncio.create_task(
        a.context.bus.call(ProbeSleepMsg(resource_uuid=owned_by_b, sleep_s=60), timeout=60)
    )
    await asyncio.sleep(0.1)
    assert a.context.bus.in_flight(b.uuid) == 1
    assert b.heartbeat is not None
    await b.heartbeat.stop(leave=False)
    started = time.monotonic()
    reply = await asyncio.wait_for(call, timeout=5)
    assert time.monotonic() - started < 0.2 * 3 + 1.0
    assert reply.error is not None
    assert reply.error.code == SysErr.MANAGEMENT_NODE_UNAVAILABLE


async def test_node_whose_row_is_deleted_is_fenced(start_node: Start) -> None:
    a = await start_node()
    await _set_config(a, "node", "heartbeatInterval", "0.2")
    async with a.context.db.session() as session, session.begin():
        await session.execute(delete(ManagementNodeVO).where(ManagementNodeVO.uuid == a.uuid))
    await asyncio.wait_for(a.wait_stopped(), timeout=3)
    assert a.state is NodeState.FENCED
    reply = await a.context.bus.call(GetManagementNodeInfoMsg())
    assert reply.error is not None
    assert reply.error.code == SysErr.NOT_READY
    status, body = await _health(a)
    assert status == 503
    assert "node is fenced" in body["reasons"]


async def test_heartbeat_interval_change_applies_at_run_time(start_node: Start) -> None:
    a = await start_node()
    assert a.heartbeat is not None
    assert a.heartbeat.interval == 5.0
    await _set_config(a, "node", "heartbeatInterval", "0.25")
    assert a.heartbeat.interval == 0.25
    with pytest.raises(ZError) as info:
        await _set_config(a, "node", "heartbeatInterval", "-1")
    assert info.value.code == KernelErr.CONFIG_INVALID_VALUE
    assert a.heartbeat.interval == 0.25
