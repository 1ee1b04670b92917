"""Zones and clusters end to end over REST: create, update, query with joins and tags,
cascade delete, tenant isolation, global configs, management nodes, version."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import aiohttp
import pytest
from pydantic import SecretStr

from tests.support.api_client import ApiClient
from zstackpy.core.bus.inproc import InProcBroker
from zstackpy.core.db import upgrade
from zstackpy.core.settings import NodeSettings
from zstackpy.node.node import ManagementNode

ADMIN_PASSWORD = "admin-pw-for-tests"
ZSTACK_DATE = re.compile(r"^[A-Z][a-z]{2} \d{1,2}, \d{4} \d{1,2}:\d{2}:\d{2} [AP]M$")

NewClient = Callable[[], Awaitable[ApiClient]]


@pytest.fixture
async def node(tmp_path: Path) -> AsyncIterator[ManagementNode]:
    settings = NodeSettings(
        data_dir=tmp_path,
        db_url=f"sqlite+aiosqlite:///{tmp_path / 'zstack.db'}",
        http_port=0,
        admin_password=SecretStr(ADMIN_PASSWORD),
        plugins=["tests.support.guard_plugin:plugin"],
    )
    await upgrade(settings.database_url)
    started = ManagementNode(settings, broker=InProcBroker())
    await started.start()
    yield started
    await started.stop()


@pytest.fixture
async def new_client(node: ManagementNode) -> AsyncIterator[NewClient]:
    assert node.http is not None
    base = f"http://127.0.0.1:{node.http.port}"
    async with aiohttp.ClientSession() as http:

        async def make() -> ApiClient:
            return ApiClient(base, http)

        yield make


@pytest.fixture
async def admin(new_client: NewClient) -> ApiClient:
    client = await new_client()
    await client.login("admin", ADMIN_PASSWORD)
    return client


async def _normal_account(admin: ApiClient, new_client: NewClient, name: str) -> ApiClient:
    from tests.support.api_client import sha512

    created = await admin.create("/accounts", {"name": name, "password": sha512(name + "-pw")})
    assert created.status == 200, created.body
    client = await new_client()
    await client.login(name, name + "-pw")
    return client


async def test_create_zone_answers_a_job_then_the_inventory(admin: ApiClient) -> None:
    started = await admin.request("POST", "/zones", json={"params": {"name": "z1"}})
    assert started.status == 202
    assert "/zstack/v1/api-jobs/" in started.body["location"]
    done = await admin.finish(started)
    assert done.status == 200
    zone = done.body["inventory"]
    assert zone["name"] == "z1"
    assert zone["state"] == "Enabled"
    assert zone["isDefault"] is False
    assert ZSTACK_DATE.match(zone["createDate"])
    assert started.body.get("resourceUuid", zone["uuid"]) == zone["uuid"]


async def test_caller_chosen_resource_uuid_is_kept(admin: ApiClient) -> None:
    wanted = "ab" * 16
    zone = await admin.inventory("/zones", {"name": "z", "resourceUuid": wanted})
    assert zone["uuid"] == wanted
    again = await admin.create("/zones", {"name": "z", "resourceUuid": wanted})
    assert again.status >= 400
    assert again.error["code"] == "SYS.1002"


async def test_update_change_state_and_read_back(admin: ApiClient) -> None:
    zone = await admin.inventory("/zones", {"name": "before"})
    updated = await admin.action(
        f"/zones/{zone['uuid']}/actions", "updateZone", {"name": "after", "description": "d"}
    )
    assert updated.status == 200, updated.body
    assert updated.body["inventory"]["name"] == "after"
    disabled = await admin.action(
        f"/zones/{zone['uuid']}/actions", "changeZoneState", {"stateEvent": "disable"}
    )
    assert disabled.body["inventory"]["state"] == "Disabled"
    read = await admin.request("GET", f"/zones/{zone['uuid']}")
    assert read.status == 200
    assert [z["name"] for z in read.body["inventories"]] == ["after"]


async def test_query_zones_through_clusters(admin: ApiClient) -> None:
    z1 = await admin.inventory("/zones", {"name": "z1"})
    z2 = await admin.inventory("/zones", {"name": "z2"})
    for name, zone in (("kvm-a", z1), ("kvm-b", z1), ("sim", z2)):
        cluster = await admin.inventory(
            "/clusters", {"zoneUuid": zone["uuid"], "name": name, "hypervisorType": "KVM"}
        )
        assert cluster["zoneUuid"] == zone["uuid"]
    found = await admin.query("/zones", "cluster.name~=kvm%")
    assert found.status == 200
    assert [z["uuid"] for z in found.body["inventories"]] == [z1["uuid"]]
    counted = await admin.query("/clusters", f"zoneUuid={z1['uuid']}", count="true")
    assert counted.body["total"] == 2
    by_zone_name = await admin.query("/clusters", "zone.name=z2", fields="name")
    assert by_zone_name.body["inventories"] == [{"name": "sim"}]


async def test_cluster_in_a_missing_zone_is_refused(admin: ApiClient) -> None:
    answer = await admin.create(
        "/clusters", {"zoneUuid": "f" * 32, "name": "c", "hypervisorType": "KVM"}
    )
    assert answer.error["code"] == "SYS.1003"
    assert (await admin.query("/clusters", count="true")).body["total"] == 0


async def test_delete_zone_cascades_to_clusters_and_tags(admin: ApiClient) -> None:
    zone = await admin.inventory("/zones", {"name": "z"}, systemTags=["zoneKey::abc"])
    cluster = await admin.inventory(
        "/clusters", {"zoneUuid": zone["uuid"], "name": "c", "hypervisorType": "KVM"}
    )
    tag = await admin.inventory(
        "/user-tags", {"resourceType": "ClusterVO", "resourceUuid": cluster["uuid"], "tag": "t"}
    )
    assert tag["resourceUuid"] == cluster["uuid"]
    deleted = await admin.delete(f"/zones/{zone['uuid']}")
    assert deleted.status == 200, deleted.body
    for path in ("/zones", "/clusters", "/system-tags", "/user-tags"):
        assert (await admin.query(path, count="true")).body["total"] == 0, path


async def test_a_refusing_child_stops_the_delete_with_nothing_deleted(admin: ApiClient) -> None:
    zone = await admin.inventory("/zones", {"name": "z"})
    await admin.inventory(
        "/clusters", {"zoneUuid": zone["uuid"], "name": "c", "hypervisorType": "KVM"}
    )
    await admin.inventory(
        "/user-tags", {"resourceType": "ZoneVO", "resourceUuid": zone["uuid"], "tag": "guarded"}
    )
    refused = await admin.delete(f"/zones/{zone['uuid']}")
    assert refused.error["code"] == "SYS.1004"
    assert "the guard is still on duty" in refused.error["description"]
    assert (await admin.query("/zones", count="true")).body["total"] == 1
    assert (await admin.query("/clusters", count="true")).body["total"] == 1
    enforced = await admin.delete(f"/zones/{zone['uuid']}", deleteMode="Enforcing")
    assert enforced.status == 200, enforced.body
    assert (await admin.query("/clusters", count="true")).body["total"] == 0


async def test_system_tags_are_validated_before_anything_is_created(admin: ApiClient) -> None:
    bad = await admin.create("/zones", {"name": "z"}, systemTags=["zoneKey::not ok!"])
    assert bad.status == 400
    assert bad.error["code"] == "SYS.1007"
    assert bad.error["details"]["validPatterns"] == ["zoneKey::{key}"]
    assert (await admin.query("/zones", count="true")).body["total"] == 0
    good = await admin.inventory("/zones", {"name": "z"}, systemTags=["zoneKey::k1"])
    tagged = await admin.query("/zones", "__systemTag__=zoneKey::k1")
    assert [z["uuid"] for z in tagged.body["inventories"]] == [good["uuid"]]
    untagged = await admin.query("/zones", "__systemTag__!=zoneKey::k1")
    assert untagged.body["inventories"] == []


async def test_user_tags_on_create_and_in_queries(admin: ApiClient) -> None:
    zone = await admin.inventory("/zones", {"name": "z"}, userTags=["prod"])
    await admin.inventory("/zones", {"name": "other"})
    found = await admin.query("/zones", "__userTag__=prod")
    assert [z["uuid"] for z in found.body["inventories"]] == [zone["uuid"]]
    tags = await admin.query("/user-tags", f"resourceUuid={zone['uuid']}")
    assert [t["tag"] for t in tags.body["inventories"]] == ["prod"]
    removed = await admin.delete(f"/tags/{tags.body['inventories'][0]['uuid']}")
    assert removed.status == 200
    assert (await admin.query("/zones", "__userTag__=prod")).body["inventories"] == []


async def test_accounts_see_and_touch_only_their_own(
    admin: ApiClient, new_client: NewClient
) -> None:
    a = await _normal_account(admin, new_client, "alice")
    b = await _normal_account(admin, new_client, "bob")
    alices = await a.inventory("/zones", {"name": "alice-zone"})
    await b.inventory("/zones", {"name": "bob-zone"})
    seen_by_b = await b.query("/zones")
    assert [z["name"] for z in seen_by_b.body["inventories"]] == ["bob-zone"]
    assert (await b.request("GET", f"/zones/{alices['uuid']}")).body["inventories"] == []
    missing = "0" * 32
    for uuid in (alices["uuid"], missing):
        update = await b.action(f"/zones/{uuid}/actions", "updateZone", {"name": "x"})
        delete = await b.delete(f"/zones/{uuid}")
        cluster = await b.create(
            "/clusters", {"zoneUuid": uuid, "name": "c", "hypervisorType": "KVM"}
        )
        for answer in (update, delete, cluster):
            assert answer.status == 404, answer.body
            assert answer.error["code"] == "SYS.1003"
    assert (await a.request("GET", f"/zones/{alices['uuid']}")).body["inventories"][0][
        "name"
    ] == "alice-zone"
    everything = await admin.query("/zones", count="true")
    assert everything.body["total"] == 2


async def test_global_configs_over_the_api(admin: ApiClient, new_client: NewClient) -> None:
    path = "/global-configurations/node/heartbeatInterval/actions"
    found = await admin.query("/global-configurations", "category=node", "name=heartbeatInterval")
    assert found.body["inventories"][0]["defaultValue"] == "5.0"
    changed = await admin.action(path, "updateGlobalConfig", {"value": "2.5"})
    assert changed.status == 200, changed.body
    assert changed.body["inventory"]["value"] == "2.5"
    bad = await admin.action(path, "updateGlobalConfig", {"value": "-3"})
    assert bad.status == 400, bad.body
    assert bad.error["code"] == "CONFIG.1001"
    reset = await admin.action(path, "resetGlobalConfig", {})
    assert reset.body["inventory"]["value"] == "5.0"
    normal = await _normal_account(admin, new_client, "carol")
    refused = await normal.action(path, "updateGlobalConfig", {"value": "1"})
    assert refused.status == 403
    assert refused.error["code"] == "ID.1002"


async def test_management_nodes_and_version(admin: ApiClient, node: ManagementNode) -> None:
    nodes = await admin.query("/management-nodes")
    assert [n["uuid"] for n in nodes.body["inventories"]] == [node.uuid]
    assert ZSTACK_DATE.match(nodes.body["inventories"][0]["heartBeat"])
    anonymous = ApiClient(admin.base, admin.http)
    version = await anonymous.request("PUT", "/management-nodes/actions", json={"getVersion": {}})
    assert version.status == 200
    assert version.body["version"]
