"""The node's agent client over real loopback HTTP: a small agent in the test answers at
once and posts results to the node's callback endpoint, as the protocol says."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from zstackpy.core.agent import AgentClient, AgentEndpoint, AgentErr, AgentReport
from zstackpy.core.agent.driver import InstalledAgentsDriver
from zstackpy.core.errors import ZError
from zstackpy.core.workqueue import WorkQueues
from zstackpy.node.agent_endpoints import mount_agent_endpoints

TOKEN = "t0ken"


@dataclass
class FakeAgent:
    """Plays an agent: answers 200 at once, posts the result later (or never)."""

    http: aiohttp.ClientSession
    result: dict[str, Any] = field(default_factory=lambda: {"success": True, "x": 1})
    delay: float = 0.0
    post_callback: bool = True
    running: int = 0
    peak: int = 0
    seen: list[dict[str, str]] = field(default_factory=list)
    late_answers: list[int] = field(default_factory=list)
    tasks: set[asyncio.Task[None]] = field(default_factory=set)

    async def handle(self, request: web.Request) -> web.Response:
        self.seen.append(dict(request.headers))
        if request.headers.get("Authorization") != f"Bearer {TOKEN}":
            return web.json_response({"success": False, "error": "bad token"}, status=401)
        if request.path.startswith("/sync"):
            return web.json_response({"success": True, "echo": await request.json()})
        task = asyncio.create_task(
            self._finish(request.headers["taskuuid"], request.headers["callbackurl"])
        )
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return web.json_response({})

    async def _finish(self, task_uuid: str, url: str) -> None:
        self.running += 1
        self.peak = max(self.peak, self.running)
        try:
            await asyncio.sleep(self.delay)
        finally:
            self.running -= 1
        if self.post_callback:
            async with self.http.post(url, json=self.result, headers={"taskuuid": task_uuid}) as r:
                if r.status != 200:
                    self.late_answers.append(r.status)


@dataclass
class Rig:
    client: AgentClient
    agent: FakeAgent
    endpoint: AgentEndpoint
    node_url: str
    http: aiohttp.ClientSession


async def _serve(app: web.Application) -> tuple[web.AppRunner, int]:
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, int(runner.addresses[0][1])


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    async with aiohttp.ClientSession() as http:
        client = AgentClient(WorkQueues())
        node_app = web.Application()
        mount_agent_endpoints(node_app, client)
        node_runner, node_port = await _serve(node_app)
        agent = FakeAgent(http)
        agent_app = web.Application()
        agent_app.router.add_post("/{tail:.*}", agent.handle)
        agent_runner, agent_port = await _serve(agent_app)
        node_url = f"http://127.0.0.1:{node_port}"
        await client.start(node_url, InstalledAgentsDriver())
        endpoint = AgentEndpoint("host-1", "127.0.0.1", agent_port, TOKEN)
        try:
            yield Rig(client, agent, endpoint, node_url, http)
        finally:
            await client.stop()
            for task in list(agent.tasks):
                task.cancel()
            await agent_runner.cleanup()
            await node_runner.cleanup()


async def test_call_returns_the_result_posted_to_the_callback_url(rig: Rig) -> None:
    result = await rig.client.call(rig.endpoint, "/host/ping", {"hostUuid": "h"})
    assert result == {"success": True, "x": 1}
    headers = rig.agent.seen[0]
    assert len(headers["taskuuid"]) == 32
    assert headers["callbackurl"] == f"{rig.node_url}/zstack/asyncrest/callback"
    assert headers["Authorization"] == f"Bearer {TOKEN}"


async def test_a_failed_command_is_a_structured_error(rig: Rig) -> None:
    rig.agent.result = {"success": False, "error": "disk full"}
    with pytest.raises(ZError) as caught:
        await rig.client.call(rig.endpoint, "/vm/start", {})
    assert caught.value.code == AgentErr.COMMAND_FAILED
    assert caught.value.details["error"] == "disk full"
    assert caught.value.details["path"] == "/vm/start"


async def test_no_callback_times_out_and_a_late_one_is_answered_404(rig: Rig) -> None:
    rig.agent.delay = 0.3
    with pytest.raises(ZError) as caught:
        await rig.client.call(rig.endpoint, "/host/ping", {}, timeout=0.1)
    assert caught.value.code == AgentErr.TIMEOUT
    await asyncio.sleep(0.4)
    assert rig.agent.late_answers == [404]


async def test_a_wrong_token_is_refused(rig: Rig) -> None:
    wrong = AgentEndpoint("host-1", "127.0.0.1", rig.endpoint.port, "other")
    with pytest.raises(ZError) as caught:
        await rig.client.call(wrong, "/host/ping", {})
    assert caught.value.code == AgentErr.REFUSED
    assert caught.value.details["status"] == 401


async def test_a_closed_port_is_unreachable(rig: Rig) -> None:
    runner, port = await _serve(web.Application())
    await runner.cleanup()  # the port is free again: nothing listens there
    gone = AgentEndpoint("host-2", "127.0.0.1", port, TOKEN)
    with pytest.raises(ZError) as caught:
        await rig.client.call(gone, "/host/ping", {}, timeout=5)
    assert caught.value.code == AgentErr.UNREACHABLE


async def test_sync_call_reads_the_answer_itself(rig: Rig) -> None:
    result = await rig.client.call_sync(rig.endpoint, "/sync/connect", {"hostUuid": "h"})
    assert result["echo"] == {"hostUuid": "h"}
    assert "taskuuid" not in rig.agent.seen[0]


async def test_calls_in_flight_per_agent_are_bounded(rig: Rig) -> None:
    rig.agent.delay = 0.05
    results = await asyncio.gather(
        *(rig.client.call(rig.endpoint, "/p", {}, max_in_flight=3) for _ in range(12))
    )
    assert len(results) == 12
    assert rig.agent.peak == 3


async def test_callback_endpoint_answers_like_zstack(rig: Rig) -> None:
    url = f"{rig.node_url}/zstack/asyncrest/callback"
    async with rig.http.post(url, json={}) as resp:
        assert resp.status == 400
    async with rig.http.post(url, json={}, headers={"taskuuid": "f" * 32}) as resp:
        assert resp.status == 404
        assert "No callback found" in await resp.text()


async def test_reports_reach_their_handler_with_the_token(rig: Rig) -> None:
    got: list[AgentReport] = []

    async def handler(report: AgentReport) -> None:
        got.append(report)

    rig.client.on_report("/kvm/reportvmstate", handler)
    url = f"{rig.node_url}/zstack/asyncrest/sendcommand"
    body = {"hostUuid": "h", "vmUuid": "v", "vmState": "Running"}
    headers = {"commandpath": "/kvm/reportvmstate", "Authorization": f"Bearer {TOKEN}"}
    async with rig.http.post(url, json=body, headers=headers) as resp:
        assert resp.status == 200
    assert got == [AgentReport("/kvm/reportvmstate", body, TOKEN)]
    async with rig.http.post(url, json=body, headers={"commandpath": "/kvm/nope"}) as resp:
        assert resp.status == 404
    async with rig.http.post(url, json=body) as resp:
        assert resp.status == 400


async def test_stop_fails_waiting_calls(rig: Rig) -> None:
    rig.agent.post_callback = False
    call = asyncio.create_task(rig.client.call(rig.endpoint, "/p", {}))
    while not rig.agent.seen:
        await asyncio.sleep(0.01)
    await rig.client.stop()
    with pytest.raises(ZError):
        await call


async def test_a_lost_callback_is_fetched_by_a_resend_under_the_same_task_id(rig: Rig) -> None:
    rig.client.resend_after = 0.2
    rig.agent.post_callback = False  # the first result is lost on the way

    async def deliver_from_now_on() -> None:
        while not rig.agent.seen:
            await asyncio.sleep(0.01)
        rig.agent.post_callback = True

    flip = asyncio.create_task(deliver_from_now_on())
    result = await rig.client.call(rig.endpoint, "/vm/start", {}, timeout=5)
    await flip
    assert result == {"success": True, "x": 1}
    task_ids = {headers["taskuuid"] for headers in rig.agent.seen}
    assert len(rig.agent.seen) >= 2
    assert len(task_ids) == 1  # a resend, never a new command
    assert rig.client.resends >= 1


async def test_held_commands_are_refused_without_reaching_the_agent(rig: Rig) -> None:
    rig.client.hold = lambda: "the database has been unreachable for 9 s"
    for send in (rig.client.call, rig.client.call_sync):
        with pytest.raises(ZError) as caught:
            await send(rig.endpoint, "/vm/start", {})
        assert caught.value.code == "SYS.1010"
    assert rig.agent.seen == []


async def test_a_command_queued_for_the_agent_when_the_hold_begins_never_reaches_it(
    rig: Rig,
) -> None:
    rig.agent.delay = 0.3
    seen: list[tuple[str, str | None]] = []
    rig.client.observer = lambda path, _s, code: seen.append((path, code))
    first = asyncio.create_task(rig.client.call(rig.endpoint, "/first", {}, max_in_flight=1))
    queued = asyncio.create_task(rig.client.call(rig.endpoint, "/queued", {}, max_in_flight=1))
    while not rig.agent.seen:
        await asyncio.sleep(0.01)
    rig.client.hold = lambda: "the database has been unreachable for 9 s"
    assert (await first)["success"]  # sent before the hold: its callback still counts
    with pytest.raises(ZError) as caught:
        await queued
    assert caught.value.code == "SYS.1010"
    assert [h["taskuuid"] for h in rig.agent.seen] == [rig.agent.seen[0]["taskuuid"]]
    assert ("/queued", "SYS.1010") in seen  # held commands show in the metrics


async def test_no_resend_goes_out_while_held(rig: Rig) -> None:
    rig.client.resend_after = 0.1
    rig.agent.post_callback = False
    call = asyncio.create_task(rig.client.call(rig.endpoint, "/vm/start", {}, timeout=5))
    while not rig.agent.seen:
        await asyncio.sleep(0.01)
    rig.client.hold = lambda: "the database has been unreachable for 9 s"
    await asyncio.sleep(0.8)  # several resend periods
    assert len(rig.agent.seen) == 1
    assert rig.client.resends == 0
    rig.client.hold = None  # the database is back: the resend fetches the result
    rig.agent.post_callback = True
    assert (await call)["success"]
    assert len({h["taskuuid"] for h in rig.agent.seen}) == 1
