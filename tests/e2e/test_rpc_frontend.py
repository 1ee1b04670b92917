"""Legacy RPC front-end (``POST /zstack/api``), as zstack-cli and the MCP server use it."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest

from zstackpy.core.ids import new_uuid
from zstackpy.node.node import ManagementNode

Start = Callable[..., Any]
API_PROBE = "tests.support.api_probe:plugin"


@pytest.fixture
async def client(start_node: Start) -> AsyncIterator[aiohttp.ClientSession]:
    node: ManagementNode = await start_node(plugins=[API_PROBE])
    assert node.http is not None
    async with aiohttp.ClientSession(f"http://127.0.0.1:{node.http.port}") as session:
        yield session


async def rpc(client: aiohttp.ClientSession, body: Any, path: str = "/zstack/api") -> Any:
    async with client.post(path, json=body) as resp:
        assert resp.status == 200
        return await resp.json()


def result_of(answer: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    ((key, inner),) = json.loads(answer["result"]).items()
    return key, inner


@pytest.mark.parametrize("path", ["/zstack/api", "/zstack/api/"])
async def test_sync_api_is_done_with_a_result_string(
    client: aiohttp.ClientSession, path: str
) -> None:
    body = {
        "test.zstackpy.APIProbeEchoMsg": {
            "text": "hi",
            "items": ["a"],
            "session": {"uuid": new_uuid()},
        }
    }
    answer = await rpc(client, body, path)
    assert answer["state"] == "Done"
    assert len(answer["uuid"]) == 32
    assert answer["createdDate"]
    assert answer["finishedDate"]
    key, inner = result_of(answer)
    assert key == "test.zstackpy.APIProbeEchoReply"
    assert inner["success"] is True
    assert inner["inventory"]["text"] == "hi"
    assert inner["inventory"]["items"] == ["a"]


async def test_sync_api_error_is_done_with_a_failed_result(client: aiohttp.ClientSession) -> None:
    body = {"test.zstackpy.APIProbeFailMsg": {"uuid": new_uuid(), "code": "SYS.1003"}}
    key, inner = result_of(await rpc(client, body))
    assert key == "test.zstackpy.APIProbeFailReply"
    assert inner["success"] is False
    assert inner["error"]["code"] == "SYS.1003"


async def test_async_api_processing_then_result(client: aiohttp.ClientSession) -> None:
    body = {"test.zstackpy.APIProbeCreateThingMsg": {"name": "rpc1", "sleepS": 0.2}}
    answer = await rpc(client, body)
    assert answer["state"] == "Processing"
    assert "result" not in answer
    for _ in range(200):
        async with client.get(f"/zstack/api/result/{answer['uuid']}") as resp:
            assert resp.status == 200
            polled = await resp.json()
        if polled["state"] == "Done":
            break
        assert polled["state"] == "Processing"
        await asyncio.sleep(0.02)
    assert polled["uuid"] == answer["uuid"]
    assert polled["finishedDate"]
    key, inner = result_of(polled)
    assert key == "test.zstackpy.APIProbeCreateThingEvent"
    assert inner["success"] is True
    assert inner["inventory"]["name"] == "rpc1"
    assert len(inner["inventory"]["uuid"]) == 32


async def test_query_takes_conditions_natively(client: aiohttp.ClientSession) -> None:
    body = {
        "test.zstackpy.APIProbeQueryThingMsg": {
            "conditions": [{"name": "name", "op": "=", "value": "vm1"}],
            "limit": 10,
            "sortBy": "createDate",
            "sortDirection": "desc",
            "replyWithCount": True,
        }
    }
    _, inner = result_of(await rpc(client, body))
    asked = inner["inventories"][0]
    assert asked["conditions"] == [{"name": "name", "op": "=", "value": "vm1"}]
    assert (asked["limit"], asked["sortDirection"]) == (10, "desc")
    assert inner["total"] == 1


async def test_unknown_class_is_done_with_an_error(client: aiohttp.ClientSession) -> None:
    answer = await rpc(client, {"org.zstack.header.NoSuchMsg": {}})
    assert answer["state"] == "Done"
    key, inner = result_of(answer)
    assert key == "org.zstack.header.message.APIReply"
    assert inner["success"] is False
    assert inner["error"]["code"] == "SYS.1008"


async def test_invalid_fields_and_bodies_are_done_with_an_error(
    client: aiohttp.ClientSession,
) -> None:
    _, inner = result_of(await rpc(client, {"test.zstackpy.APIProbeEchoMsg": {"count": "x"}}))
    assert inner["error"]["code"] == "SYS.1007"
    assert {"text", "count"} <= set(inner["error"]["details"]["fields"])
    _, inner = result_of(await rpc(client, {"a": {}, "b": {}}))
    assert inner["error"]["code"] == "SYS.1007"
    async with client.post("/zstack/api", data=b"{oops") as resp:
        assert resp.status == 200
        _, inner = result_of(await resp.json())
    assert inner["error"]["code"] == "SYS.1007"


async def test_unknown_result_is_404(client: aiohttp.ClientSession) -> None:
    async with client.get(f"/zstack/api/result/{new_uuid()}") as resp:
        assert resp.status == 404
        assert (await resp.json())["error"]["code"] == "SYS.1003"
