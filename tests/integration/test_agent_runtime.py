"""AgentRuntime over real loopback HTTP: an AgentServer plays the agent, NodeStub the node."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from agents.runtime import AgentCommandError, AgentRuntime, AgentServer, ReportError, TaskCache
from tests.support.sim import NodeStub

TOKEN = "t0ken-" + "a" * 26


class FastRetryRuntime(AgentRuntime):
    __slots__ = ()
    callback_backoff = (0.05, 0.05, 0.05)


class Agent:
    """A runtime with test commands that count their runs."""

    def __init__(self) -> None:
        self.runtime = FastRetryRuntime()
        self.server = AgentServer(self.runtime)
        self.runs: dict[str, int] = {}
        self.release = asyncio.Event()
        self.started = asyncio.Event()
        self.cancelled = False
        rt = self.runtime
        rt.command("/echo", self._echo)
        rt.command("/slow", self._slow)
        rt.command("/refuse", self._refuse)
        rt.command("/crash", self._crash)
        rt.command("/host/echo", self._echo, sync=True)
        rt.command("/sync/refuse", self._refuse, sync=True)
        rt.command("/host/connect", self._echo, sync=True)

    def _count(self, name: str) -> None:
        self.runs[name] = self.runs.get(name, 0) + 1

    async def _echo(self, cmd: dict[str, Any]) -> dict[str, Any]:
        self._count("echo")
        return {"echoed": cmd}

    async def _slow(self, cmd: dict[str, Any]) -> dict[str, Any]:
        self._count("slow")
        self.started.set()
        try:
            await self.release.wait()
        except asyncio.CancelledError:
            self.cancelled = True
            raise
        return {"value": cmd.get("value")}

    async def _refuse(self, cmd: dict[str, Any]) -> dict[str, Any]:
        self._count("refuse")
        raise AgentCommandError("no free memory")

    async def _crash(self, cmd: dict[str, Any]) -> dict[str, Any]:
        self._count("crash")
        raise KeyError("boom")

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server.port}{path}"


@pytest.fixture
async def node() -> AsyncIterator[NodeStub]:
    stub = NodeStub()
    await stub.start()
    yield stub
    await stub.stop()


@pytest.fixture
async def agent() -> AsyncIterator[Agent]:
    a = Agent()
    a.runtime.install_token(TOKEN)
    await a.server.start("127.0.0.1", 0)
    yield a
    await a.server.stop()


async def test_async_command_answers_at_once_then_calls_back(agent: Agent, node: NodeStub) -> None:
    task_uuid = uuid.uuid4().hex
    status, body = await node.send(agent.url("/echo"), {"x": 1}, token=TOKEN, task_uuid=task_uuid)
    assert (status, body) == (200, {})
    result = await node.wait_result(task_uuid)
    assert result == {"success": True, "error": None, "echoed": {"x": 1}}


async def test_repeated_task_id_returns_cached_result_without_rerun(
    agent: Agent, node: NodeStub
) -> None:
    task_uuid = uuid.uuid4().hex
    await node.send(agent.url("/echo"), {"x": 1}, token=TOKEN, task_uuid=task_uuid)
    first = await node.wait_result(task_uuid)
    status, body = await node.send(agent.url("/echo"), {"x": 2}, token=TOKEN, task_uuid=task_uuid)
    assert (status, body) == (200, {})
    results = await node.wait_callbacks(task_uuid, 2)
    assert results == [first, first]
    assert agent.runs == {"echo": 1}


async def test_repeat_while_running_runs_once_and_answers_both(
    agent: Agent, node: NodeStub
) -> None:
    task_uuid = uuid.uuid4().hex
    url = agent.url("/slow")
    assert (await node.send(url, {"value": 7}, token=TOKEN, task_uuid=task_uuid))[0] == 200
    await agent.started.wait()
    assert (await node.send(url, {"value": 7}, token=TOKEN, task_uuid=task_uuid))[0] == 200
    assert agent.runtime.running == 1
    agent.release.set()
    results = await node.wait_callbacks(task_uuid, 2)
    assert results == [{"success": True, "error": None, "value": 7}] * 2
    assert agent.runs == {"slow": 1}


@pytest.mark.parametrize("token", [None, "wrong", ""])
async def test_missing_or_wrong_token_is_refused(
    agent: Agent, node: NodeStub, token: str | None
) -> None:
    for path in ("/echo", "/host/echo"):
        status, body = await node.send(agent.url(path), {}, token=token)
        assert status == 401
        assert body["success"] is False
        assert "token" in body["error"]
    assert agent.runs == {}
    assert node.callbacks == {}


async def test_agent_without_token_refuses_everything(node: NodeStub) -> None:
    a = Agent()
    await a.server.start("127.0.0.1", 0)
    try:
        for token in (TOKEN, ""):
            status, _ = await node.send(a.url("/echo"), {}, token=token)
            assert status == 401
        assert (await node.send(a.url("/host/echo"), {}, token=TOKEN))[0] == 401
        assert a.runs == {}
    finally:
        await a.server.stop()


async def test_missing_task_headers_are_bad_requests(agent: Agent, node: NodeStub) -> None:
    status, body = await node.send(agent.url("/echo"), {}, token=TOKEN, task_uuid=None)
    assert status == 400
    assert body["success"] is False
    status, _ = await node.send(agent.url("/echo"), {}, token=TOKEN, callback=False)
    assert status == 400
    assert agent.runs == {}


async def test_unknown_path_and_bad_body(agent: Agent, node: NodeStub) -> None:
    status, body = await node.send(agent.url("/nope"), {}, token=TOKEN)
    assert status == 404
    assert body == {"success": False, "error": "no such command: /nope"}
    assert node.http is not None
    headers = {"Authorization": f"Bearer {TOKEN}", "taskuuid": "a" * 32, "callbackurl": "x"}
    async with node.http.post(agent.url("/echo"), data=b"[1, 2]", headers=headers) as resp:
        assert resp.status == 400
    assert agent.runs == {}


async def test_command_errors_become_success_false(agent: Agent, node: NodeStub) -> None:
    refused = await node.call(agent.url("/refuse"), token=TOKEN)
    assert refused == {"success": False, "error": "no free memory"}
    crashed = await node.call(agent.url("/crash"), token=TOKEN)
    assert crashed == {"success": False, "error": "KeyError: 'boom'"}


async def test_sync_command_answers_in_the_response(agent: Agent, node: NodeStub) -> None:
    status, body = await node.send(
        agent.url("/host/echo"), {"a": "b"}, token=TOKEN, task_uuid=None, callback=False
    )
    assert (status, body) == (200, {"success": True, "error": None, "echoed": {"a": "b"}})
    status, body = await node.send(agent.url("/sync/refuse"), {}, token=TOKEN, task_uuid=None)
    assert (status, body) == (200, {"success": False, "error": "no free memory"})
    assert node.callbacks == {}


async def test_report_posts_commandpath_and_token(agent: Agent, node: NodeStub) -> None:
    with pytest.raises(ReportError, match="sendCommandUrl"):
        await agent.runtime.report("/kvm/reportvmstate", {})
    connect = {"hostUuid": "h1", "sendCommandUrl": node.send_command_url}
    status, _ = await node.send(agent.url("/host/connect"), connect, token=TOKEN, task_uuid=None)
    assert status == 200
    assert agent.runtime.send_command_url == node.send_command_url
    body = {"hostUuid": "h1", "vmUuid": "v1", "vmState": "Shutdown"}
    await agent.runtime.report("/kvm/reportvmstate", body)
    [report] = await node.wait_reports()
    assert report.commandpath == "/kvm/reportvmstate"
    assert report.authorization == f"Bearer {TOKEN}"
    assert report.body == body


async def test_callback_retried_on_5xx_not_on_404(agent: Agent, node: NodeStub) -> None:
    node.callback_status = [500, 503]
    result = await node.call(agent.url("/echo"), {"n": 1}, token=TOKEN)
    assert result["success"] is True
    assert node.callback_attempts == 3

    node.callback_status = [404]
    node.callback_attempts = 0
    task_uuid = uuid.uuid4().hex
    await node.send(agent.url("/echo"), {}, token=TOKEN, task_uuid=task_uuid)
    async with asyncio.timeout(5):
        while agent.runtime.running:  # the one attempt is over when the task ends
            await asyncio.sleep(0.01)
    assert node.callback_attempts == 1
    assert task_uuid not in node.callbacks


async def test_stop_cancels_running_commands(node: NodeStub) -> None:
    a = Agent()
    a.runtime.install_token(TOKEN)
    await a.server.start("127.0.0.1", 0)
    try:
        task_uuid = uuid.uuid4().hex
        await node.send(a.url("/slow"), {}, token=TOKEN, task_uuid=task_uuid)
        await a.started.wait()
    finally:
        await a.server.stop()
    assert a.cancelled
    assert a.runtime.running == 0
    assert node.callbacks == {}


async def test_task_cache_bounds() -> None:
    cache = TaskCache(max_entries=2, max_age=60)
    for n in range(3):
        cache.add(f"t{n}", "/p", "http://127.0.0.1/cb")
    assert len(cache) == 2
    assert cache.get("t0") is None
    assert cache.get("t2") is not None
    aged = TaskCache(max_entries=10, max_age=0.05)
    aged.add("old", "/p", "http://127.0.0.1/cb")
    await asyncio.sleep(0.1)
    assert aged.get("old") is None


def test_token_and_registration_rules() -> None:
    rt = AgentRuntime()
    with pytest.raises(ValueError, match="empty"):
        rt.install_token("")
    rt.command("/a", Agent()._echo)
    with pytest.raises(ValueError, match="already"):
        rt.command("/a", Agent()._echo)
    with pytest.raises(ValueError, match="start with"):
        rt.command("b", Agent()._echo)
