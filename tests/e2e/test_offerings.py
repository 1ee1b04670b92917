"""Instance and disk offerings end to end over REST: create, query, update, state, delete,
and bad input answering SYS.1007 with nothing created."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.api_client import ApiClient

GIB = 1024**3
MIB = 1024**2


async def _count(admin: ApiClient, path: str) -> int:
    answer = await admin.query(path, count="true")
    assert answer.status == 200, answer.body
    total: int = answer.body["total"]
    return total


async def test_instance_offering_lifecycle(admin: ApiClient) -> None:
    created = await admin.inventory(
        "/instance-offerings",
        {"name": "small", "cpuNum": 2, "memorySize": 2 * GIB, "description": "2c2g"},
    )
    assert created["cpuNum"] == 2
    assert created["memorySize"] == 2 * GIB
    assert created["reservedMemorySize"] == 0
    assert created["cpuSpeed"] == 0
    assert created["type"] == "UserVm"
    assert created["state"] == "Enabled"
    assert created["allocatorStrategy"] == "DefaultHostAllocatorStrategy"
    await admin.inventory(
        "/instance-offerings", {"name": "big", "cpuNum": 16, "memorySize": 64 * GIB}
    )

    found = await admin.query("/instance-offerings", "cpuNum>4")
    assert [o["name"] for o in found.body["inventories"]] == ["big"]

    uuid = created["uuid"]
    updated = await admin.action(
        f"/instance-offerings/{uuid}/actions",
        "updateInstanceOffering",
        {"name": "tiny", "allocatorStrategy": "MinimumMemoryUsageHostAllocatorStrategy"},
    )
    assert updated.status == 200, updated.body
    assert updated.body["inventory"]["name"] == "tiny"
    assert (
        updated.body["inventory"]["allocatorStrategy"] == "MinimumMemoryUsageHostAllocatorStrategy"
    )
    disabled = await admin.action(
        f"/instance-offerings/{uuid}/actions",
        "changeInstanceOfferingState",
        {"stateEvent": "disable"},
    )
    assert disabled.body["inventory"]["state"] == "Disabled"
    read = await admin.request("GET", f"/instance-offerings/{uuid}")
    assert [(o["name"], o["state"]) for o in read.body["inventories"]] == [("tiny", "Disabled")]

    deleted = await admin.delete(f"/instance-offerings/{uuid}")
    assert deleted.status == 200, deleted.body
    assert await _count(admin, "/instance-offerings") == 1


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"cpuNum": 0, "memorySize": GIB}, "cpuNum"),
        ({"cpuNum": 1, "memorySize": 15 * MIB}, "memorySize"),
        ({"cpuNum": 1, "memorySize": GIB, "reservedMemorySize": 2 * GIB}, "(body)"),
        ({"cpuNum": 1}, "memorySize"),
    ],
)
async def test_bad_instance_offering_is_refused(
    admin: ApiClient, params: dict[str, Any], field: str
) -> None:
    answer = await admin.create("/instance-offerings", {"name": "bad", **params})
    assert answer.status == 400, answer.body
    assert answer.error["code"] == "SYS.1007"
    assert field in answer.error["details"]["fields"]
    assert await _count(admin, "/instance-offerings") == 0


async def test_unknown_allocator_strategy_is_refused(admin: ApiClient) -> None:
    params = {"name": "o", "cpuNum": 1, "memorySize": GIB, "allocatorStrategy": "Random"}
    answer = await admin.create("/instance-offerings", params)
    assert answer.error["code"] == "SYS.1007"
    assert "DefaultHostAllocatorStrategy" in answer.error["details"]["validValues"]
    assert await _count(admin, "/instance-offerings") == 0
    created = await admin.inventory("/instance-offerings", {**params, "allocatorStrategy": None})
    updated = await admin.action(
        f"/instance-offerings/{created['uuid']}/actions",
        "updateInstanceOffering",
        {"allocatorStrategy": "Random"},
    )
    assert updated.error["code"] == "SYS.1007"
    read = await admin.request("GET", f"/instance-offerings/{created['uuid']}")
    assert read.body["inventories"][0]["allocatorStrategy"] == "DefaultHostAllocatorStrategy"


async def test_disk_offering_lifecycle(admin: ApiClient) -> None:
    created = await admin.inventory(
        "/disk-offerings", {"name": "data-100g", "diskSize": 100 * GIB, "sortKey": 3}
    )
    assert created["diskSize"] == 100 * GIB
    assert created["sortKey"] == 3
    assert created["type"] == "zstack"
    assert created["allocatorStrategy"] == "DefaultPrimaryStorageAllocationStrategy"
    local = await admin.inventory(
        "/disk-offerings",
        {"name": "local", "diskSize": GIB, "allocationStrategy": "LocalPrimaryStorageStrategy"},
    )
    assert local["allocatorStrategy"] == "LocalPrimaryStorageStrategy"

    uuid = created["uuid"]
    updated = await admin.action(
        f"/disk-offerings/{uuid}/actions", "updateDiskOffering", {"description": "for databases"}
    )
    assert updated.body["inventory"]["description"] == "for databases"
    disabled = await admin.action(
        f"/disk-offerings/{uuid}/actions", "changeDiskOfferingState", {"stateEvent": "disable"}
    )
    assert disabled.body["inventory"]["state"] == "Disabled"
    found = await admin.query("/disk-offerings", "state=Enabled")
    assert [o["name"] for o in found.body["inventories"]] == ["local"]

    assert (await admin.delete(f"/disk-offerings/{uuid}")).status == 200
    missing = await admin.delete(f"/disk-offerings/{uuid}")
    assert missing.error["code"] == "SYS.1003"
    assert await _count(admin, "/disk-offerings") == 1


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"diskSize": 0}, "diskSize"),
        ({"diskSize": -1}, "diskSize"),
        ({"diskSize": GIB, "allocationStrategy": "Nearest"}, "allocationStrategy"),
        ({"diskSize": GIB, "type": "ceph"}, "type"),
    ],
)
async def test_bad_disk_offering_is_refused(
    admin: ApiClient, params: dict[str, Any], field: str
) -> None:
    answer = await admin.create("/disk-offerings", {"name": "bad", **params})
    assert answer.status == 400, answer.body
    assert answer.error["code"] == "SYS.1007"
    assert field in answer.error["details"]["fields"]
    assert await _count(admin, "/disk-offerings") == 0
