"""The event stream (``GET /zstack/v1/events``) end to end: resource changes and job
completions reach the accounts that may see them, and only those; a slow client is dropped
with a final error; heartbeats; stopping the node ends the stream."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import aiohttp
import pytest
from pydantic import SecretStr

from tests.support.api_client import ApiClient, sha512
from tests.support.sse import SseEvent, open_stream
from zstackpy.api.events import ResourceChangedEvent
from zstackpy.api.http import EVENT_HUB, EventHub
from zstackpy.core.bus.inproc import InProcBroker
from zstackpy.core.db import upgrade
from zstackpy.core.settings import NodeSettings
from zstackpy.node.node import ManagementNode, NodeState

ADMIN_PASSWORD = "admin-pw-for-tests"
MISSING = "0" * 32


@pytest.fixture
async def node(tmp_path: Path) -> AsyncIterator[ManagementNode]:
    settings = NodeSettings(
        data_dir=tmp_path,
        db_url=f"sqlite+aiosqlite:///{tmp_path / 'zstack.db'}",
        http_port=0,
        admin_password=SecretStr(ADMIN_PASSWORD),
        plugins=[],
    )
    await upgrade(settings.database_url)
    started = ManagementNode(settings, broker=InProcBroker())
    await started.start()
    yield started
    if started.state is NodeState.READY:  # a test may have stopped it already
        await started.stop()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def base_of(node: ManagementNode) -> str:
    assert node.http is not None
    return f"http://127.0.0.1:{node.http.port}"


@pytest.fixture
async def admin(node: ManagementNode, http: aiohttp.ClientSession) -> ApiClient:
    client = ApiClient(base_of(node), http)
    await client.login("admin", ADMIN_PASSWORD)
    return client


async def normal_account(admin: ApiClient, name: str) -> tuple[ApiClient, str]:
    """A new normal account, logged in; returns its client and its account uuid."""
    created = await admin.create("/accounts", {"name": name, "password": sha512(name + "-pw")})
    assert created.status == 200, created.body
    client = ApiClient(admin.base, admin.http)
    await client.login(name, name + "-pw")
    return client, created.body["inventory"]["uuid"]


def event_hub(node: ManagementNode) -> EventHub:
    assert node.http is not None
    return node.http.app[EVENT_HUB]


def is_about(uuid: str, name: str) -> Callable[[SseEvent], bool]:
    def match(event: SseEvent) -> bool:
        return event.name == name and event.data.get("resourceUuid") == uuid

    return match


def job_uuid_of(accepted: dict[str, str]) -> str:
    return accepted["location"].rsplit("/", 1)[1]


async def create_zone(client: ApiClient, name: str) -> tuple[str, str]:
    """Create a zone; returns (zone uuid, job uuid)."""
    accepted = await client.request("POST", "/zones", json={"params": {"name": name}})
    assert accepted.status == 202, accepted.body
    done = await client.finish(accepted)
    assert done.status == 200, done.body
    return done.body["inventory"]["uuid"], job_uuid_of(accepted.body)


async def admin_account_uuid(admin: ApiClient) -> str:
    found = await admin.query("/accounts", "name=admin")
    return str(found.body["inventories"][0]["uuid"])


async def test_admin_sees_a_zone_created_and_its_job_done(
    node: ManagementNode, admin: ApiClient
) -> None:
    admin_uuid = await admin_account_uuid(admin)
    async with open_stream(admin.http, admin.base, admin.session_uuid) as stream:
        zone_uuid, job_uuid = await create_zone(admin, "z1")
        changed = await stream.until(is_about(zone_uuid, "resourceChanged"))
        assert changed.data["change"] == "created"
        assert changed.data["resourceType"] == "ZoneVO"
        assert changed.data["accountUuid"] == admin_uuid
        assert changed.data["inventory"]["name"] == "z1"
        assert len(changed.id) == 32
        done = await stream.until(lambda e: e.name == "jobCompleted")
        assert done.data["jobUuid"] == job_uuid
        assert done.data["apiName"] == "CreateZone"
        assert done.data["state"] == "Done"
        assert done.data["accountUuid"] == admin_uuid
        assert done.data["resourceUuid"] == zone_uuid
        assert done.data["result"]["inventory"]["uuid"] == zone_uuid
        assert "error" not in done.data or done.data["error"] is None
        assert done.id != changed.id

        # Updates and deletes are changes too.
        await admin.action(f"/zones/{zone_uuid}/actions", "updateZone", {"name": "z2"})
        updated = await stream.until(is_about(zone_uuid, "resourceChanged"))
        assert (updated.data["change"], updated.data["inventory"]["name"]) == ("updated", "z2")
        await admin.delete(f"/zones/{zone_uuid}")
        deleted = await stream.until(is_about(zone_uuid, "resourceChanged"))
        assert deleted.data["change"] == "deleted"
        assert deleted.data.get("inventory") is None


async def test_a_normal_account_sees_its_own_events_only(admin: ApiClient) -> None:
    alice, alice_uuid = await normal_account(admin, "alice")
    async with (
        open_stream(admin.http, admin.base, admin.session_uuid) as admin_stream,
        open_stream(alice.http, alice.base, alice.session_uuid) as alice_stream,
    ):
        admins_zone, _ = await create_zone(admin, "admins")
        await admin_stream.until(lambda e: e.name == "jobCompleted")
        alices_zone, alices_job = await create_zone(alice, "alices")

        # Events reach a stream in the order they were published: had Alice been shown
        # the admin's zone, it would come before her own.
        first = await alice_stream.next()
        assert first is not None
        assert (first.name, first.data["resourceUuid"]) == ("resourceChanged", alices_zone)
        assert first.data["accountUuid"] == alice_uuid
        done = await alice_stream.until(lambda e: e.name == "jobCompleted")
        assert (done.data["jobUuid"], done.data["state"]) == (alices_job, "Done")
        assert done.data["accountUuid"] == alice_uuid

        # The admin sees everything, Alice's events included.
        seen = await admin_stream.until(is_about(alices_zone, "resourceChanged"))
        assert seen.data["accountUuid"] == alice_uuid
        await admin_stream.until(
            lambda e: e.name == "jobCompleted" and e.data["jobUuid"] == alices_job
        )

        # Nothing of the admin's leaks later either.
        await admin.action(f"/zones/{admins_zone}/actions", "updateZone", {"name": "x"})
        await admin_stream.until(is_about(admins_zone, "resourceChanged"))
        assert await alice_stream.quiet(0.3) == []


async def test_failed_jobs_end_failed_with_their_error(admin: ApiClient) -> None:
    alice, alice_uuid = await normal_account(admin, "alice")
    admins_zone, _ = await create_zone(admin, "admins")
    async with (
        open_stream(admin.http, admin.base, admin.session_uuid) as admin_stream,
        open_stream(alice.http, alice.base, alice.session_uuid) as alice_stream,
    ):
        # Fails in the zone service: there is no such zone.
        accepted = await admin.request(
            "PUT", f"/zones/{MISSING}/actions", json={"updateZone": {"name": "x"}}
        )
        failed = await admin_stream.until(lambda e: e.name == "jobCompleted")
        assert failed.data["jobUuid"] == job_uuid_of(accepted.body)
        assert failed.data["apiName"] == "UpdateZone"
        assert failed.data["resourceUuid"] == MISSING  # the zone the action was about
        assert failed.data["state"] == "Failed"
        assert failed.data["error"]["code"] == "SYS.1003"
        assert failed.data.get("result") is None
        assert (await admin.finish(accepted)).error["code"] == "SYS.1003"

        # Refused at the portal (another account's zone looks missing): the job is still
        # Alice's, so her stream tells her.
        refused = await alice.request(
            "PUT", f"/zones/{admins_zone}/actions", json={"updateZone": {"name": "mine"}}
        )
        mine = await alice_stream.until(lambda e: e.name == "jobCompleted")
        assert mine.data["jobUuid"] == job_uuid_of(refused.body)
        assert (mine.data["state"], mine.data["error"]["code"]) == ("Failed", "SYS.1003")
        assert mine.data["accountUuid"] == alice_uuid


async def test_the_stream_needs_a_valid_session(node: ManagementNode, admin: ApiClient) -> None:
    url = f"{admin.base}/zstack/v1/events"
    for headers, status, code in (
        ({}, 401, "ID.1005"),
        ({"Authorization": f"OAuth {'f' * 32}"}, 401, "ID.1001"),
        ({"Authorization": f"Bearer {admin.session_uuid}"}, 400, "SYS.1007"),
    ):
        async with admin.http.get(url, headers=headers) as response:
            assert response.status == status
            body = await response.json()
            assert body["error"]["code"] == code
    assert event_hub(node).stream_count == 0  # the refused requests left no stream behind


async def test_stopping_the_node_ends_the_stream(node: ManagementNode, admin: ApiClient) -> None:
    async with open_stream(admin.http, admin.base, admin.session_uuid) as stream:
        await node.stop()
        last = await stream.next(timeout=10)
        assert last is not None
        assert last.name == "error"
        assert last.data["error"]["code"] == "SYS.1010"
        assert await stream.next(timeout=5) is None
        assert stream.ended


async def test_a_slow_client_is_dropped_with_a_final_error(
    node: ManagementNode, admin: ApiClient
) -> None:
    hub = event_hub(node)
    hub.backlog_limit = 3
    async with open_stream(admin.http, admin.base, admin.session_uuid) as stream:
        # dispatch never waits, so the stream's writer cannot run between these: its
        # backlog overflows exactly as behind a client that stopped reading.
        for n in range(10):
            await hub.dispatch(
                ResourceChangedEvent(
                    resource_type="ZoneVO", resource_uuid=f"{n:032x}", change="updated"
                )
            )
        last = await stream.next()
        assert last is not None
        assert last.name == "error"
        assert last.data["error"]["code"] == "QUEUE.1001"
        assert last.data["error"]["details"]["backlogLimit"] == 3
        assert await stream.next() is None
    assert hub.stream_count == 0


async def test_idle_streams_get_heartbeats(node: ManagementNode, admin: ApiClient) -> None:
    event_hub(node).heartbeat_s = 0.05
    async with open_stream(admin.http, admin.base, admin.session_uuid) as stream:
        assert await stream.quiet(0.3) == []
        assert stream.comments.count("keep-alive") >= 2
        assert not stream.ended
