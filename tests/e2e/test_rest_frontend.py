"""REST v1 front-end: generated routes, sync and async APIs, errors, jobs, OpenAPI, docs."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest

from tests.support.api_probe import CALLS
from zstackpy.api.http.errors import status_for
from zstackpy.api.http.rest import path_shape
from zstackpy.api.messages import all_apis
from zstackpy.core.ids import new_uuid
from zstackpy.node.node import ManagementNode

Start = Callable[..., Any]
API_PROBE = "tests.support.api_probe:plugin"


@pytest.fixture
async def node(start_node: Start) -> ManagementNode:
    node: ManagementNode = await start_node(plugins=[API_PROBE])
    return node


@pytest.fixture
async def client(node: ManagementNode) -> AsyncIterator[aiohttp.ClientSession]:
    assert node.http is not None
    async with aiohttp.ClientSession(f"http://127.0.0.1:{node.http.port}") as session:
        yield session


async def _json(resp: aiohttp.ClientResponse) -> Any:
    return await resp.json(content_type=None)


async def poll(client: aiohttp.ClientSession, location: str) -> tuple[int, Any]:
    """Follow a job's location until it stops answering 202."""
    path = location[location.index("/zstack/v1/") :]
    for _ in range(200):
        async with client.get(path) as resp:
            if resp.status != 202:
                return resp.status, await _json(resp)
            assert await _json(resp) == {}
        await asyncio.sleep(0.02)
    raise AssertionError(f"job {location} still running")


async def test_sync_get_answers_the_reply_body(client: aiohttp.ClientSession) -> None:
    params = [("text", "hi"), ("count", "3"), ("items", "a,b"), ("items", "c")]
    params += [("labels.color", "red"), ("sessionUuid", "forged")]
    async with client.get("/zstack/v1/probe/echo", params=params) as resp:
        assert resp.status == 200
        body = await _json(resp)
    inv = body["inventory"]
    assert (inv["text"], inv["count"], inv["items"]) == ("hi", 3, ["a", "b", "c"])
    assert inv["labels"] == {"color": "red"}
    assert inv["sessionUuid"] is None  # reserved: a client cannot set it
    assert "success" not in body


async def test_wrong_type_is_400_naming_the_field(client: aiohttp.ClientSession) -> None:
    async with client.get("/zstack/v1/probe/echo", params={"text": "x", "count": "many"}) as resp:
        assert resp.status == 400
        err = (await _json(resp))["error"]
    assert err["code"] == "SYS.1007"
    assert "count" in err["details"]["fields"]
    assert "count" in err["description"]


async def test_missing_field_is_400(client: aiohttp.ClientSession) -> None:
    async with client.post("/zstack/v1/probe/things", json={"params": {}}) as resp:
        assert resp.status == 400
        assert "name" in (await _json(resp))["error"]["details"]["fields"]


async def test_async_create_202_then_poll_to_200(client: aiohttp.ClientSession) -> None:
    body = {"params": {"name": "t1", "size": 5, "sleepS": 0.2}}
    async with client.post("/zstack/v1/probe/things", json=body) as resp:
        assert resp.status == 202
        accepted = await _json(resp)
    assert "/zstack/v1/api-jobs/" in accepted["location"]
    assert accepted["location"].startswith("http://127.0.0.1:")
    assert accepted["apiTimeout"] == 1_800_000
    resource = accepted["resourceUuid"]
    assert len(resource) == 32
    status, result = await poll(client, accepted["location"])
    assert status == 200, result
    assert result == {"inventory": {"uuid": resource, "name": "t1", "size": 5}}


async def test_client_chosen_resource_uuid_and_timeout(client: aiohttp.ClientSession) -> None:
    mine = new_uuid()
    headers = {"X-API-Timeout": "12"}
    body = {"params": {"name": "t2", "resourceUuid": mine}}
    async with client.post("/zstack/v1/probe/things", json=body, headers=headers) as resp:
        accepted = await _json(resp)
    assert accepted["resourceUuid"] == mine
    assert accepted["apiTimeout"] == 12_000
    assert (await poll(client, accepted["location"]))[1]["inventory"]["uuid"] == mine


async def test_job_uuid_makes_a_retry_idempotent(client: aiohttp.ClientSession) -> None:
    job = new_uuid()
    name = f"idem-{job}"
    body = {"params": {"name": name, "sleepS": 0.1}}
    answers = []
    for _ in range(3):
        async with client.post(
            "/zstack/v1/probe/things", json=body, headers={"X-Job-UUID": job}
        ) as resp:
            assert resp.status == 202
            answers.append(await _json(resp))
    assert answers[0] == answers[1] == answers[2]
    assert answers[0]["location"].endswith(f"/api-jobs/{job}")
    assert (await poll(client, answers[0]["location"]))[0] == 200
    # After the job ended a retry still answers the same job, without running it again.
    async with client.post("/zstack/v1/probe/things", json=body, headers={"X-Job-UUID": job}) as r:
        assert await _json(r) == answers[0]
    assert CALLS[f"ProbeCreateThing:{name}"] == 1


async def test_bad_job_uuid_is_400(client: aiohttp.ClientSession) -> None:
    async with client.post(
        "/zstack/v1/probe/things", json={"params": {"name": "x"}}, headers={"X-Job-UUID": "nope"}
    ) as resp:
        assert resp.status == 400
        assert "X-Job-UUID" in (await _json(resp))["error"]["description"]


async def test_put_picks_the_api_by_action_key(client: aiohttp.ClientSession) -> None:
    uuid = new_uuid()
    url = f"/zstack/v1/probe/things/{uuid}/actions"
    # Tags at the top level (the server's form) and inside the action (the Java SDK's).
    body = {"probeRenameThing": {"name": "new", "userTags": ["in"]}, "userTags": ["top"]}
    async with client.put(url, json=body) as resp:
        assert resp.status == 200
        assert (await _json(resp))["inventory"] == {
            "uuid": uuid,
            "name": "new",
            "userTags": ["in", "top"],
        }
    async with client.put(url, json={"renameIt": {"name": "new"}}) as resp:
        assert resp.status == 400
        err = (await _json(resp))["error"]
    assert err["code"] == "SYS.1007"
    assert sorted(err["details"]["validKeys"]) == ["probeFail", "probeRenameThing"]
    assert "probeRenameThing" in err["description"]


@pytest.mark.parametrize(
    ("code", "status"),
    [
        ("SYS.1007", 400),
        ("SYS.1003", 404),
        ("ID.1001", 401),
        ("ID.1005", 401),
        ("ID.1002", 403),
        ("ID.1004", 429),
        ("SYS.1001", 504),
        ("SYS.1006", 503),
        ("ZONE.9999", 503),
    ],
)
async def test_error_codes_map_to_statuses(
    client: aiohttp.ClientSession, code: str, status: int
) -> None:
    assert status_for(code) == status
    url = f"/zstack/v1/probe/things/{new_uuid()}/actions"
    async with client.put(url, json={"probeFail": {"code": code}}) as resp:
        assert resp.status == status
        err = (await _json(resp))["error"]
    assert err["code"] == code
    assert err["description"] == f"failing as asked with {code}"


async def test_async_delete_failure_is_polled_as_error(client: aiohttp.ClientSession) -> None:
    url = f"/zstack/v1/probe/things/{new_uuid()}"
    async with client.delete(url, params={"deleteMode": "Enforcing", "failCode": "SYS.1004"}) as r:
        assert r.status == 202
        location = (await _json(r))["location"]
    status, body = await poll(client, location)
    assert status == 503
    assert body["error"]["code"] == "SYS.1004"
    async with client.delete(url, params={"deleteMode": "Sometimes"}) as resp:
        assert resp.status == 400
        assert "deleteMode" in (await _json(resp))["error"]["details"]["fields"]


async def test_query_params_and_get_by_uuid(client: aiohttp.ClientSession) -> None:
    params = [
        ("q", "name=a=b"),
        ("q", "size>=3"),
        ("limit", "5"),
        ("start", "2"),
        ("replyWithCount", "true"),
        ("sort", "-createDate"),
        ("fields", "uuid,name"),
        ("fields", "size"),
    ]
    async with client.get("/zstack/v1/probe/things", params=params) as resp:
        assert resp.status == 200
        body = await _json(resp)
    asked = body["inventories"][0]
    assert asked["conditions"] == [
        {"name": "name", "op": "=", "value": "a=b"},
        {"name": "size", "op": ">=", "value": "3"},
    ]
    assert (asked["limit"], asked["start"], asked["replyWithCount"]) == (5, 2, True)
    assert (asked["sortBy"], asked["sortDirection"]) == ("createDate", "desc")
    assert asked["fields"] == ["uuid", "name", "size"]
    assert body["total"] == 1
    uuid = new_uuid()
    async with client.get(f"/zstack/v1/probe/things/{uuid}") as resp:
        assert resp.status == 200
        asked = (await _json(resp))["inventories"][0]
    assert asked["conditions"] == [{"name": "uuid", "op": "=", "value": uuid}]
    async with client.get("/zstack/v1/probe/things", params={"q": "nooperator"}) as resp:
        assert resp.status == 400


async def test_authorization_must_be_oauth(client: aiohttp.ClientSession) -> None:
    headers = {"Authorization": "Bearer abc"}
    async with client.get("/zstack/v1/probe/echo?text=x", headers=headers) as resp:
        assert resp.status == 400
        assert "OAuth" in (await _json(resp))["error"]["description"]


async def test_malformed_json_is_400(client: aiohttp.ClientSession) -> None:
    async with client.post(
        "/zstack/v1/probe/things", data=b"{not json", headers={"Content-Type": "application/json"}
    ) as resp:
        assert resp.status == 400
        assert (await _json(resp))["error"]["code"] == "SYS.1007"
    async with client.post("/zstack/v1/probe/things", json=[1, 2]) as resp:
        assert resp.status == 400
    async with client.post("/zstack/v1/probe/things", json={"params": "x"}) as resp:
        assert resp.status == 400


async def test_too_large_body_is_413(client: aiohttp.ClientSession) -> None:
    big = io.BytesIO(b'{"params": {"name": "' + b"x" * (2 * 1024 * 1024) + b'"}}')
    async with client.post(
        "/zstack/v1/probe/things", data=big, headers={"Content-Type": "application/json"}
    ) as resp:
        assert resp.status == 413
        err = (await _json(resp))["error"]
    assert err["code"] == "SYS.1007"
    assert err["details"]["maxBytes"] == 1024 * 1024


async def test_unknown_path_404_and_wrong_verb_405(client: aiohttp.ClientSession) -> None:
    async with client.get("/zstack/v1/no-such-things") as resp:
        assert resp.status == 404
        assert (await _json(resp))["error"]["code"] == "SYS.1009"
    async with client.patch("/zstack/v1/probe/things") as resp:
        assert resp.status == 405
        err = (await _json(resp))["error"]
    assert sorted(err["details"]["allowed"]) == ["GET", "POST"]


async def test_unknown_job_is_404(client: aiohttp.ClientSession) -> None:
    async with client.get(f"/zstack/v1/api-jobs/{new_uuid()}") as resp:
        assert resp.status == 404
        assert (await _json(resp))["error"]["code"] == "SYS.1003"


async def test_openapi_lists_every_declared_api(client: aiohttp.ClientSession) -> None:
    async with client.get("/zstack/v1/openapi.json") as resp:
        assert resp.status == 200
        doc = await _json(resp)
    assert doc["openapi"].startswith("3.1")
    operations = {}
    for path, item in doc["paths"].items():
        for method, op in item.items():
            for each in [op, *op.get("x-zstack-actions", [])]:
                operations[each["operationId"]] = (method.upper(), path)
    for cls in all_apis():
        spec = cls.api
        assert spec is not None
        # APIs whose paths differ only in variable names share one path (the route's names).
        method, path = operations[spec.name]
        assert (method, path_shape(path)) == (spec.method, path_shape("/zstack/v1" + spec.path))
    assert operations["ProbeQueryThingByUuid"] == ("GET", "/zstack/v1/probe/things/{uuid}")
    create = doc["paths"]["/zstack/v1/probe/things"]["post"]
    params_ref = create["requestBody"]["content"]["application/json"]["schema"]["properties"]
    fields = doc["components"]["schemas"]["ProbeCreateThingParams"]["properties"]
    assert "params" in params_ref
    assert {"name", "size", "resourceUuid", "systemTags"} <= set(fields)
    assert not {"sessionUuid", "auth"} & set(fields)
    assert "202" in create["responses"]


async def test_docs_page_is_html(client: aiohttp.ClientSession) -> None:
    async with client.get("/zstack/v1/docs") as resp:
        assert resp.status == 200
        assert resp.content_type == "text/html"
        page = await resp.text()
    assert "ProbeCreateThing" in page
    assert "/zstack/v1/probe/things" in page
    assert "<script" not in page
