"""What the node adds for the web UI: its static files at ``/`` and ``/ui/`` (without
shadowing the API, ``/health`` or the agents' paths), the event stream's
``?sessionUuid=`` for browsers, and ``GET /zstack/v1/api-jobs/{uuid}/trace``."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from simulator import Simulator
from tests.e2e.test_event_stream import normal_account
from tests.support.api_client import ApiClient
from tests.support.datacenter import add_full_datacenter, wait_for
from zstackpy.node.node import ManagementNode
from zstackpy.web.routes import IMMUTABLE, REVALIDATE, cache_control

HOST_IP = "10.70.0.1"


def base_of(node: ManagementNode) -> str:
    assert node.http is not None
    return f"http://127.0.0.1:{node.http.port}"


# ----- static files -------------------------------------------------------------------------


async def test_root_serves_the_ui(node: ManagementNode, http: aiohttp.ClientSession) -> None:
    async with http.get(base_of(node) + "/") as resp:
        assert resp.status == 200
        assert resp.content_type == "text/html"
        assert resp.headers["Cache-Control"] == REVALIDATE
        page = await resp.text()
    assert '<script type="module" src="/ui/app.js">' in page
    async with http.get(base_of(node) + "/ui/app.js") as resp:
        assert resp.status == 200
        assert "javascript" in resp.content_type
        assert resp.headers["Cache-Control"] == REVALIDATE
        assert "Last-Modified" in resp.headers  # revalidation answers 304


async def test_static_paths_stay_inside_the_ui(
    node: ManagementNode, http: aiohttp.ClientSession
) -> None:
    for path in ("/ui/missing.js", "/ui/../__init__.py", "/ui/%2e%2e/routes.py", "/ui//etc"):
        async with http.get(base_of(node) + path) as resp:
            assert resp.status == 404, path


async def test_ui_does_not_shadow_api_or_health(
    node: ManagementNode, http: aiohttp.ClientSession
) -> None:
    async with http.get(base_of(node) + "/health") as resp:
        assert resp.status == 200
        assert (await resp.json())["state"] == "ready"
    async with http.get(base_of(node) + "/zstack/v1/zones") as resp:
        # the API's own answer (no session), in the API's error shape
        assert resp.status == 401
        assert "error" in await resp.json()
    async with http.get(base_of(node) + "/zstack/v1/no-such-thing") as resp:
        assert resp.status == 404
        assert "error" in await resp.json()


def test_hashed_assets_are_immutable() -> None:
    assert cache_control("app.3f9a0c1d.js") == IMMUTABLE
    assert cache_control("app.js") == REVALIDATE
    assert cache_control("index.html") == REVALIDATE


# ----- the event stream's session in the query string ------------------------------------


async def _stream_status(http: aiohttp.ClientSession, url: str, **headers: str) -> int:
    async with http.get(url, headers=headers) as resp:
        if resp.status == 200:
            assert resp.content_type == "text/event-stream"
            assert (await resp.content.readline()).startswith(b": connected")
        return resp.status


async def test_event_stream_takes_the_session_from_the_query(
    node: ManagementNode, http: aiohttp.ClientSession, admin: ApiClient
) -> None:
    url = base_of(node) + "/zstack/v1/events"
    assert await _stream_status(http, f"{url}?sessionUuid={admin.session_uuid}") == 200
    # the header still works, and wins over the parameter
    assert await _stream_status(http, url, Authorization=f"OAuth {admin.session_uuid}") == 200
    bad_param = f"{url}?sessionUuid={'0' * 32}"
    assert await _stream_status(http, bad_param, Authorization=f"OAuth {admin.session_uuid}") == 200
    assert (
        await _stream_status(
            http, f"{url}?sessionUuid={admin.session_uuid}", Authorization=f"OAuth {'0' * 32}"
        )
        == 401
    )
    assert await _stream_status(http, f"{url}?sessionUuid={'0' * 32}") == 401
    assert await _stream_status(http, f"{url}?sessionUuid=") == 401
    assert await _stream_status(http, url) == 401


async def test_event_stream_query_session_sees_events(
    node: ManagementNode, http: aiohttp.ClientSession, admin: ApiClient
) -> None:
    url = f"{base_of(node)}/zstack/v1/events?sessionUuid={admin.session_uuid}"
    async with http.get(url) as resp:
        assert resp.status == 200
        await resp.content.readline()
        zone = await admin.inventory("/zones", {"name": "seen-by-browser"})
        seen = b""
        while zone["uuid"].encode() not in seen:
            seen += await resp.content.readline()


# ----- job traces -------------------------------------------------------------------------


async def _job_of(admin: ApiClient, path: str, params: dict[str, Any]) -> str:
    answer = await admin.request("POST", path, json={"params": params})
    assert answer.status == 202, answer.body
    await admin.finish(answer)  # the trace is kept whether the job succeeded or not
    return str(answer.body["location"].rsplit("/", 1)[1])


@pytest.fixture
async def dc(admin: ApiClient) -> dict[str, Any]:
    return await add_full_datacenter(admin, "tr", [HOST_IP], storage=("local",))


async def test_trace_of_a_vm_create(admin: ApiClient, dc: dict[str, Any]) -> None:
    job = await _job_of(
        admin,
        "/vm-instances",
        {
            "name": "traced",
            "imageUuid": dc["image"]["uuid"],
            "instanceOfferingUuid": dc["offering"]["uuid"],
            "l3NetworkUuids": [dc["l3"]["uuid"]],
        },
    )
    answer = await admin.request("GET", f"/api-jobs/{job}/trace")
    assert answer.status == 200, answer.body
    body = answer.body
    assert body["state"] == "Done"
    assert body["apiName"] == "CreateVmInstance"
    assert body["error"] is None
    create = next(t for t in body["traces"] if t["chain"] == "vm-create")
    assert create["outcome"] == "done"
    steps = [e["step"] for e in create["entries"]]
    assert steps[0] == "resolve-vm-create"
    assert "start-vm-on-hypervisor" in steps
    assert all(e["outcome"] == "done" and e["duration_s"] >= 0 for e in create["entries"])


async def test_trace_of_a_failed_vm_create(
    admin: ApiClient, sim: Simulator, dc: dict[str, Any]
) -> None:
    sim.set_fault(HOST_IP, "/vm/start", fail="qemu: could not open disk")
    job = await _job_of(
        admin,
        "/vm-instances",
        {
            "name": "doomed",
            "imageUuid": dc["image"]["uuid"],
            "instanceOfferingUuid": dc["offering"]["uuid"],
            "l3NetworkUuids": [dc["l3"]["uuid"]],
        },
    )
    body = (await admin.request("GET", f"/api-jobs/{job}/trace")).body
    assert body["state"] == "Failed"
    assert body["error"]["code"] == "AGENT.1003"
    create = next(t for t in body["traces"] if t["chain"] == "vm-create")
    assert create["outcome"] == "failed"
    by_step = {e["step"]: e for e in create["entries"]}
    failed = by_step["start-vm-on-hypervisor"]
    assert failed["outcome"] == "failed"
    assert "could not open disk" in str(failed["error"])
    assert by_step["allocate-vm-host"]["outcome"] == "rolled-back"
    assert "rollback_duration_s" in by_step["allocate-vm-host"]
    assert by_step["finish-vm-create"]["outcome"] == "skipped"


async def test_trace_of_a_running_job_shows_its_progress(
    admin: ApiClient, sim: Simulator, dc: dict[str, Any]
) -> None:
    sim.set_fault(HOST_IP, "/vm/start", delay=1.5)
    answer = await admin.request(
        "POST",
        "/vm-instances",
        json={
            "params": {
                "name": "slow",
                "imageUuid": dc["image"]["uuid"],
                "instanceOfferingUuid": dc["offering"]["uuid"],
                "l3NetworkUuids": [dc["l3"]["uuid"]],
            }
        },
    )
    assert answer.status == 202, answer.body
    job = answer.body["location"].rsplit("/", 1)[1]
    running: dict[str, Any] = {}

    async def starting() -> bool:
        body = (await admin.request("GET", f"/api-jobs/{job}/trace")).body
        chains = {t["chain"]: t for t in body["traces"]}
        entries = chains.get("vm-create", {}).get("entries", [])
        if body["state"] == "Processing" and entries and entries[-1]["outcome"] == "running":
            running.update(chains["vm-create"])
            return bool(entries[-1]["step"] == "start-vm-on-hypervisor")
        return False

    await wait_for(starting, timeout=10)
    assert running["outcome"] == "running"
    assert running["steps"] == len(running["entries"]) + 1  # finish-vm-create to come
    assert all(e["outcome"] == "done" for e in running["entries"][:-1])
    assert (await admin.finish(answer)).status == 200
    body = (await admin.request("GET", f"/api-jobs/{job}/trace")).body
    create = next(t for t in body["traces"] if t["chain"] == "vm-create")
    assert create["outcome"] == "done"


async def test_trace_needs_a_session_and_the_owner(
    node: ManagementNode, http: aiohttp.ClientSession, admin: ApiClient
) -> None:
    job = await _job_of(admin, "/zones", {"name": "traced-zone"})
    body = (await admin.request("GET", f"/api-jobs/{job}/trace")).body
    assert body["state"] == "Done"
    assert body["traces"] == []  # a zone create runs no chain
    anonymous = ApiClient(admin.base, http)
    assert (await anonymous.request("GET", f"/api-jobs/{job}/trace")).status == 401
    other, _ = await normal_account(admin, "tracer")
    hidden = await other.request("GET", f"/api-jobs/{job}/trace")
    assert hidden.status == 404
    assert hidden.error["code"] == "SYS.1003"
    missing = await admin.request("GET", f"/api-jobs/{'0' * 32}/trace")
    assert missing.status == 404
