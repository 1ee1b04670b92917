"""API jobs: polls from any node, and jobs of a node that died or stopped end Failed."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import aiohttp
from sqlalchemy import insert

from tests.support.api_probe import CALLS
from zstackpy.api.jobs import ApiJobVO, JobState
from zstackpy.core.bus.inproc import InProcTransport
from zstackpy.core.config.messages import UpdateGlobalConfigMsg
from zstackpy.core.db import Database
from zstackpy.core.ids import new_uuid
from zstackpy.core.settings import NodeSettings
from zstackpy.node.node import ManagementNode

Start = Callable[..., Any]
API_PROBE = "tests.support.api_probe:plugin"


def base(node: ManagementNode) -> str:
    assert node.http is not None
    return f"http://127.0.0.1:{node.http.port}"


async def create(node: ManagementNode, name: str, sleep_s: float) -> dict[str, Any]:
    body = {"params": {"name": name, "sleepS": sleep_s}}
    async with (
        aiohttp.ClientSession() as client,
        client.post(f"{base(node)}/zstack/v1/probe/things", json=body) as resp,
    ):
        assert resp.status == 202
        accepted: dict[str, Any] = await resp.json()
        return accepted


async def job(node: ManagementNode, job_uuid: str) -> tuple[int, Any]:
    async with (
        aiohttp.ClientSession() as client,
        client.get(f"{base(node)}/zstack/v1/api-jobs/{job_uuid}") as resp,
    ):
        return resp.status, await resp.json()


async def wait_job(node: ManagementNode, job_uuid: str, timeout_s: float) -> tuple[int, Any]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        status, body = await job(node, job_uuid)
        if status != 202:
            return status, body
        await asyncio.sleep(0.05)
    raise AssertionError(f"job {job_uuid} still Processing after {timeout_s}s")


def job_uuid_of(accepted: dict[str, Any]) -> str:
    return str(accepted["location"].rsplit("/", 1)[1])


async def test_any_node_answers_a_poll(start_node: Start) -> None:
    a = await start_node(plugins=[API_PROBE])
    b = await start_node(plugins=[API_PROBE])
    accepted = await create(a, "polled-elsewhere", 0.1)
    status, body = await wait_job(b, job_uuid_of(accepted), 5)
    assert status == 200
    assert body["inventory"]["uuid"] == accepted["resourceUuid"]


async def test_processing_job_of_a_vanished_node_fails_at_start(
    migrated: NodeSettings, start_node: Start
) -> None:
    dead, job_uuid = new_uuid(), new_uuid()
    db = Database(migrated.database_url)
    try:
        async with db.session() as session, session.begin():
            await session.execute(
                insert(ApiJobVO).values(
                    uuid=job_uuid,
                    api_name="ProbeCreateThing",
                    state=JobState.PROCESSING,
                    node_uuid=dead,
                    timeout_ms=1000,
                )
            )
    finally:
        await db.close()
    node = await start_node(plugins=[API_PROBE])
    status, body = await job(node, job_uuid)
    assert status == 503
    assert body["error"]["code"] == "SYS.1012"
    assert body["error"]["description"] == (f"management node {dead} died while running this job")


async def test_job_of_a_crashed_node_fails_on_the_survivor(start_node: Start) -> None:
    a = await start_node(plugins=[API_PROBE])
    # A short interval for a quick detection, but a window of 2 s: a loaded machine may
    # delay A's beats past a tighter window, and B would then evict A before its crash.
    for name, value in (("heartbeatInterval", "0.2"), ("heartbeatMissCount", "10")):
        reply = await a.context.bus.call(
            UpdateGlobalConfigMsg(category="node", name=name, value=value)
        )
        reply.raise_if_error()
    b = await start_node(plugins=[API_PROBE])
    name = f"crash-{new_uuid()}"
    accepted = await create(b, name, 30)
    job_uuid = job_uuid_of(accepted)
    for _ in range(100):  # the call is under way somewhere
        if CALLS[f"ProbeCreateThing:{name}"]:
            break
        await asyncio.sleep(0.02)
    assert (await job(a, job_uuid))[0] == 202
    # A crash: B stops beating (its row stays) and stops answering.
    assert b.heartbeat is not None
    await b.heartbeat.stop(leave=False)
    transport = b.context.bus.transport
    assert isinstance(transport, InProcTransport)
    transport.broker.cancel(b.context.bus)
    status, body = await wait_job(a, job_uuid, 0.2 * 10 + 3)
    assert status == 503
    assert body["error"]["code"] == "SYS.1012"
    assert b.uuid in body["error"]["description"]


async def test_graceful_stop_fails_the_nodes_unfinished_jobs(start_node: Start) -> None:
    a = await start_node(plugins=[API_PROBE])
    b = await start_node(plugins=[API_PROBE])
    accepted = await create(b, f"stopped-{new_uuid()}", 30)
    await b.stop()
    status, body = await job(a, job_uuid_of(accepted))
    assert status == 503
    assert body["error"]["code"] == "SYS.1012"
    assert f"management node {b.uuid} stopped" in body["error"]["description"]
