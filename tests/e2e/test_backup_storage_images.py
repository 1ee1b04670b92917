"""SFTP backup storage and images end to end over REST, against the in-process simulator:
add (and the bad inputs that add nothing), zone attachment and joins, ping disconnect and
reconnect, images from URLs with capacity accounting, deletion policies."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from simulator import Simulator
from tests.support.api_client import ApiClient
from tests.support.datacenter import add_cluster, add_kvm_host, add_zone
from zstackpy.node.node import ManagementNode
from zstackpy.services.host.messages import AllocateHostMsg, AllocateHostReply

SFTP_PORT = 7171
GIB = 1024**3
TIB = 1024**4
SIMULATED_CAPACITY = 2 * TIB  # the simulator's default backup storage disk


def _bs_params(hostname: str, **params: Any) -> dict[str, Any]:
    return {
        "name": f"bs-{hostname}",
        "hostname": hostname,
        "username": "root",
        "password": "password",
        "url": "/zstack/bs",
        **params,
    }


async def _add_bs(admin: ApiClient, hostname: str, **params: Any) -> dict[str, Any]:
    return await admin.inventory("/backup-storage/sftp", _bs_params(hostname, **params))


async def _bs(admin: ApiClient, uuid: str) -> dict[str, Any]:
    answer = await admin.request("GET", f"/backup-storage/{uuid}")
    assert answer.status == 200, answer.body
    (inventory,) = answer.body["inventories"]
    result: dict[str, Any] = inventory
    return result


async def _count(admin: ApiClient, path: str, *conditions: str) -> int:
    answer = await admin.query(path, *conditions, count="true")
    assert answer.status == 200, answer.body
    total: int = answer.body["total"]
    return total


async def _set_config(admin: ApiClient, category: str, name: str, value: str) -> None:
    answer = await admin.action(
        f"/global-configurations/{category}/{name}/actions", "updateGlobalConfig", {"value": value}
    )
    assert answer.status == 200, answer.body


async def _eventually(check: Callable[[], Awaitable[bool]], timeout: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await check():
        assert loop.time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.05)


def _image_url(size: int, name: str = "cirros.qcow2") -> str:
    return f"http://images.example/{name}?size={size}"


async def _add_image(
    admin: ApiClient, bs_uuids: list[str], size: int, **params: Any
) -> dict[str, Any]:
    body = {"name": "cirros", "url": _image_url(size), "backupStorageUuids": bs_uuids, **params}
    return await admin.inventory("/images", body)


# ----- backup storage --------------------------------------------------------------------


async def test_add_attach_and_query_sftp_backup_storage(admin: ApiClient) -> None:
    zone = await add_zone(admin, "z1")
    other_zone = await add_zone(admin, "z2")
    bs = await _add_bs(admin, "10.9.0.1", description="images")
    assert bs["type"] == "SftpBackupStorage"
    assert bs["status"] == "Connected"
    assert bs["state"] == "Enabled"
    assert bs["url"] == "/zstack/bs"
    assert bs["totalCapacity"] == bs["availableCapacity"] == SIMULATED_CAPACITY
    assert (bs["hostname"], bs["username"], bs["sshPort"]) == ("10.9.0.1", "root", 22)
    assert bs["attachedZoneUuids"] == []
    assert not {"password", "agentToken", "token"} & set(bs)

    attached = await admin.create(f"/zones/{zone['uuid']}/backup-storage/{bs['uuid']}", {})
    assert attached.status == 200, attached.body
    assert attached.body["inventory"]["attachedZoneUuids"] == [zone["uuid"]]
    again = await admin.create(f"/zones/{zone['uuid']}/backup-storage/{bs['uuid']}", {})
    assert again.error["code"] == "BS.1004"

    by_zone = await admin.query("/backup-storage", f"zone.uuid={zone['uuid']}")
    assert [b["uuid"] for b in by_zone.body["inventories"]] == [bs["uuid"]]
    assert by_zone.body["inventories"][0]["attachedZoneUuids"] == [zone["uuid"]]
    assert await _count(admin, "/backup-storage", f"zone.uuid={other_zone['uuid']}") == 0
    assert await _count(admin, "/backup-storage", "zone.name=z1") == 1
    sftp = await admin.query("/backup-storage/sftp", "hostname=10.9.0.1")
    assert [(b["uuid"], b["hostname"]) for b in sftp.body["inventories"]] == [
        (bs["uuid"], "10.9.0.1")
    ]
    assert await _count(admin, "/backup-storage/sftp", f"zone.uuid={zone['uuid']}") == 1
    zones = await admin.query("/zones", f"backupStorage.name={bs['name']}")
    assert [z["uuid"] for z in zones.body["inventories"]] == [zone["uuid"]]
    capacity = await admin.request(
        "GET", "/backup-storage/capacities", params={"zoneUuids": zone["uuid"]}
    )
    assert capacity.status == 200, capacity.body
    assert (
        capacity.body["totalCapacity"] == capacity.body["availableCapacity"] == SIMULATED_CAPACITY
    )

    detached = await admin.delete(f"/zones/{zone['uuid']}/backup-storage/{bs['uuid']}")
    assert detached.status == 200, detached.body
    assert detached.body["inventory"]["attachedZoneUuids"] == []
    not_attached = await admin.delete(f"/zones/{zone['uuid']}/backup-storage/{bs['uuid']}")
    assert not_attached.error["code"] == "BS.1005"


async def test_deleting_a_zone_detaches_its_backup_storage(admin: ApiClient) -> None:
    zone = await add_zone(admin, "doomed")
    bs = await _add_bs(admin, "10.9.0.3")
    await admin.create(f"/zones/{zone['uuid']}/backup-storage/{bs['uuid']}", {})
    assert (await admin.delete(f"/zones/{zone['uuid']}")).status == 200
    kept = await _bs(admin, bs["uuid"])
    assert kept["attachedZoneUuids"] == []
    assert kept["status"] == "Connected"


async def test_wrong_credentials_add_nothing(admin: ApiClient, sim: Simulator) -> None:
    sim.declare("10.9.0.2", SFTP_PORT, password="the-right-one")
    answer = await admin.create("/backup-storage/sftp", _bs_params("10.9.0.2", password="wrong"))
    assert answer.error["code"] == "AGENT.1007"
    assert "authentication failed" in answer.error["description"]
    assert await _count(admin, "/backup-storage") == 0
    # The right password works at once: nothing of the failed add is left in the way.
    bs = await _add_bs(admin, "10.9.0.2", password="the-right-one")
    assert bs["status"] == "Connected"


async def test_duplicate_hostname_is_refused(admin: ApiClient) -> None:
    first = await _add_bs(admin, "10.9.0.4")
    answer = await admin.create("/backup-storage/sftp", _bs_params("10.9.0.4", name="twin"))
    assert answer.error["code"] == "BS.2001"
    assert answer.error["details"]["backupStorageUuid"] == first["uuid"]
    assert await _count(admin, "/backup-storage") == 1


async def test_bad_storage_path_is_refused(admin: ApiClient) -> None:
    answer = await admin.create("/backup-storage/sftp", _bs_params("10.9.0.5", url="relative"))
    assert answer.error["code"] == "SYS.1007"
    assert "url" in answer.error["details"]["fields"]
    assert await _count(admin, "/backup-storage") == 0


async def test_ping_disconnects_and_reconnects(admin: ApiClient, sim: Simulator) -> None:
    await _set_config(admin, "backupStorage", "ping.maxFailure", "1")
    await _set_config(admin, "backupStorage", "ping.interval", "0.2")
    bs = await _add_bs(admin, "10.9.0.6")

    async def status_is(status: str) -> bool:
        current: str = (await _bs(admin, bs["uuid"]))["status"]
        return current == status

    await sim.set_alive("10.9.0.6", False, port=SFTP_PORT)
    await _eventually(lambda: status_is("Disconnected"))
    await sim.set_alive("10.9.0.6", True, port=SFTP_PORT)
    await _eventually(lambda: status_is("Connected"))


async def test_reconnect_and_state(admin: ApiClient, sim: Simulator) -> None:
    bs = await _add_bs(admin, "10.9.0.7")
    actions = f"/backup-storage/{bs['uuid']}/actions"
    await sim.set_alive("10.9.0.7", False, port=SFTP_PORT)
    failed = await admin.action(actions, "reconnectBackupStorage", {})
    assert failed.error["code"] == "AGENT.1007"  # the redeploy finds the machine dead
    assert (await _bs(admin, bs["uuid"]))["status"] == "Disconnected"
    await sim.set_alive("10.9.0.7", True, port=SFTP_PORT)
    back = await admin.action(
        f"/backup-storage/sftp/{bs['uuid']}/actions", "reconnectSftpBackupStorage", {}
    )
    assert back.status == 200, back.body
    assert back.body["inventory"]["status"] == "Connected"
    assert back.body["inventory"]["hostname"] == "10.9.0.7"

    disabled = await admin.action(actions, "changeBackupStorageState", {"stateEvent": "disable"})
    assert disabled.body["inventory"]["state"] == "Disabled"
    refused = await admin.create(
        "/images", {"name": "i", "url": _image_url(GIB), "backupStorageUuids": [bs["uuid"]]}
    )
    assert refused.error["code"] == "BS.1002"
    renamed = await admin.action(actions, "updateBackupStorage", {"name": "renamed"})
    assert renamed.body["inventory"]["name"] == "renamed"


# ----- images ----------------------------------------------------------------------------


async def test_add_image_from_url(admin: ApiClient, sim: Simulator) -> None:
    bs = await _add_bs(admin, "10.9.1.1")
    size = 3 * GIB + 17
    image = await _add_image(admin, [bs["uuid"]], size, guestOsType="cirros", platform="Linux")
    assert image["status"] == "Ready"
    assert image["state"] == "Enabled"
    assert image["size"] == image["actualSize"] == size
    assert image["md5Sum"]
    assert (image["format"], image["mediaType"], image["type"]) == (
        "qcow2",
        "RootVolumeTemplate",
        "zstack",
    )
    (ref,) = image["backupStorageRefs"]
    assert ref["backupStorageUuid"] == bs["uuid"]
    assert ref["status"] == "Ready"
    assert ref["installPath"] == f"/zstack/bs/images/{image['uuid']}.qcow2"
    assert sim.machine("10.9.1.1", SFTP_PORT).images == {ref["installPath"]: size}

    after = await _bs(admin, bs["uuid"])
    assert after["availableCapacity"] == SIMULATED_CAPACITY - size

    queried = await admin.query("/images", f"backupStorageRefs.backupStorageUuid={bs['uuid']}")
    assert [i["uuid"] for i in queried.body["inventories"]] == [image["uuid"]]
    assert (
        queried.body["inventories"][0]["backupStorageRefs"][0]["installPath"] == ref["installPath"]
    )
    assert await _count(admin, "/images", "backupStorage.name=bs-10.9.1.1") == 1
    assert await _count(admin, "/images", "backupStorage.name=elsewhere") == 0
    by_bs = await admin.query("/backup-storage", "image.name=cirros")
    assert [b["uuid"] for b in by_bs.body["inventories"]] == [bs["uuid"]]


@pytest.mark.parametrize(
    "url", ["ftp://images.example/a.qcow2", "images.example/a.qcow2", "http:///no-host.qcow2"]
)
async def test_bad_image_url_adds_nothing(admin: ApiClient, url: str) -> None:
    bs = await _add_bs(admin, "10.9.1.2")
    answer = await admin.create(
        "/images", {"name": "bad", "url": url, "backupStorageUuids": [bs["uuid"]]}
    )
    assert answer.error["code"] == "SYS.1007"
    assert url in answer.error["description"]
    assert await _count(admin, "/images") == 0
    assert (await _bs(admin, bs["uuid"]))["availableCapacity"] == SIMULATED_CAPACITY


async def test_image_bigger_than_the_backup_storage_adds_nothing(
    admin: ApiClient, sim: Simulator
) -> None:
    sim.declare("10.9.1.3", SFTP_PORT, storage_capacity=2 * GIB)
    bs = await _add_bs(admin, "10.9.1.3")
    assert bs["availableCapacity"] == 2 * GIB
    answer = await admin.create(
        "/images", {"name": "huge", "url": _image_url(5 * GIB), "backupStorageUuids": [bs["uuid"]]}
    )
    assert answer.error["code"] == "IMAGE.1001"
    assert "not enough space" in answer.error["description"]
    assert await _count(admin, "/images") == 0
    assert (await _bs(admin, bs["uuid"]))["availableCapacity"] == 2 * GIB

    # The node's own accounting refuses too: the machine's disk grew, but the node still
    # knows the capacity it read at connect (until a reconnect reads it again).
    sim.declare("10.9.1.3", SFTP_PORT, storage_capacity=10 * GIB)
    answer = await admin.create(
        "/images", {"name": "big", "url": _image_url(3 * GIB), "backupStorageUuids": [bs["uuid"]]}
    )
    assert answer.error["code"] == "IMAGE.1001"
    assert answer.error["cause"]["code"] == "BS.1003"
    assert not sim.machine("10.9.1.3", SFTP_PORT).images  # the downloaded file was removed
    assert await _count(admin, "/images") == 0


async def test_partial_download_keeps_the_copies_made(admin: ApiClient, sim: Simulator) -> None:
    sim.declare("10.9.1.5", SFTP_PORT, storage_capacity=GIB)
    roomy = await _add_bs(admin, "10.9.1.4")
    cramped = await _add_bs(admin, "10.9.1.5")
    answer = await admin.create(
        "/images",
        {
            "name": "half",
            "url": _image_url(2 * GIB),
            "backupStorageUuids": [roomy["uuid"], cramped["uuid"]],
        },
    )
    assert answer.status == 200, answer.body
    image = answer.body["inventory"]
    assert image["status"] == "Ready"
    assert [r["backupStorageUuid"] for r in image["backupStorageRefs"]] == [roomy["uuid"]]
    assert answer.body["downloadFailures"][cramped["uuid"]]["code"] == "AGENT.1003"


async def test_add_image_checks_its_backup_storage(admin: ApiClient, sim: Simulator) -> None:
    missing = await admin.create(
        "/images", {"name": "i", "url": _image_url(GIB), "backupStorageUuids": ["0" * 32]}
    )
    assert missing.error["code"] == "SYS.1003"
    bs = await _add_bs(admin, "10.9.1.6")
    await sim.set_alive("10.9.1.6", False, port=SFTP_PORT)
    await admin.action(f"/backup-storage/{bs['uuid']}/actions", "reconnectBackupStorage", {})
    disconnected = await admin.create(
        "/images", {"name": "i", "url": _image_url(GIB), "backupStorageUuids": [bs["uuid"]]}
    )
    assert disconnected.error["code"] == "BS.1001"
    iso_as_qcow2 = await admin.create(
        "/images",
        {
            "name": "i",
            "url": _image_url(GIB),
            "mediaType": "ISO",
            "format": "qcow2",
            "backupStorageUuids": [bs["uuid"]],
        },
    )
    assert iso_as_qcow2.error["code"] == "SYS.1007"
    assert await _count(admin, "/images") == 0


async def test_direct_delete_returns_capacity(admin: ApiClient, sim: Simulator) -> None:
    bs = await _add_bs(admin, "10.9.1.7")
    image = await _add_image(admin, [bs["uuid"]], 4 * GIB)
    assert (await _bs(admin, bs["uuid"]))["availableCapacity"] == SIMULATED_CAPACITY - 4 * GIB
    assert (await admin.delete(f"/images/{image['uuid']}")).status == 200
    assert await _count(admin, "/images") == 0
    assert (await _bs(admin, bs["uuid"]))["availableCapacity"] == SIMULATED_CAPACITY
    assert not sim.machine("10.9.1.7", SFTP_PORT).images


async def test_delayed_delete_recover_and_expunge(admin: ApiClient, sim: Simulator) -> None:
    await _set_config(admin, "image", "deletionPolicy", "Delay")
    bs = await _add_bs(admin, "10.9.1.8")
    image = await _add_image(admin, [bs["uuid"]], GIB)
    actions = f"/images/{image['uuid']}/actions"
    not_yet = await admin.action(actions, "expungeImage", {})
    assert not_yet.error["code"] == "IMAGE.1002"

    assert (await admin.delete(f"/images/{image['uuid']}")).status == 200
    (deleted,) = (await admin.request("GET", f"/images/{image['uuid']}")).body["inventories"]
    assert deleted["status"] == "Deleted"
    assert [r["status"] for r in deleted["backupStorageRefs"]] == ["Deleted"]
    assert (await _bs(admin, bs["uuid"]))["availableCapacity"] == SIMULATED_CAPACITY - GIB

    recovered = await admin.action(actions, "recoverImage", {})
    assert recovered.status == 200, recovered.body
    assert recovered.body["inventory"]["status"] == "Ready"
    assert [r["status"] for r in recovered.body["inventory"]["backupStorageRefs"]] == ["Ready"]

    assert (await admin.delete(f"/images/{image['uuid']}")).status == 200
    expunged = await admin.action(actions, "expungeImage", {"backupStorageUuids": [bs["uuid"]]})
    assert expunged.status == 200, expunged.body
    assert await _count(admin, "/images") == 0
    assert (await _bs(admin, bs["uuid"]))["availableCapacity"] == SIMULATED_CAPACITY
    assert not sim.machine("10.9.1.8", SFTP_PORT).images


async def test_update_and_state_of_an_image(admin: ApiClient) -> None:
    bs = await _add_bs(admin, "10.9.1.9")
    image = await _add_image(admin, [bs["uuid"]], GIB)
    actions = f"/images/{image['uuid']}/actions"
    updated = await admin.action(
        actions, "updateImage", {"name": "cirros-0.6", "platform": "Other", "system": True}
    )
    assert updated.status == 200, updated.body
    assert (updated.body["inventory"]["name"], updated.body["inventory"]["platform"]) == (
        "cirros-0.6",
        "Other",
    )
    assert updated.body["inventory"]["system"] is True
    disabled = await admin.action(actions, "changeImageState", {"stateEvent": "disable"})
    assert disabled.body["inventory"]["state"] == "Disabled"
    assert await _count(admin, "/images", "state=Disabled", "name=cirros-0.6") == 1


async def test_deleting_backup_storage_forgets_its_copies(admin: ApiClient) -> None:
    only = await _add_bs(admin, "10.9.2.1")
    second = await _add_bs(admin, "10.9.2.2")
    lonely = await _add_image(admin, [only["uuid"]], GIB, name="lonely")
    shared = await _add_image(admin, [only["uuid"], second["uuid"]], GIB, name="shared")

    assert (await admin.delete(f"/backup-storage/{only['uuid']}")).status == 200
    assert await _count(admin, "/backup-storage") == 1
    remaining = await admin.query("/images")
    assert [i["uuid"] for i in remaining.body["inventories"]] == [shared["uuid"]]
    (kept,) = remaining.body["inventories"]
    assert [r["backupStorageUuid"] for r in kept["backupStorageRefs"]] == [second["uuid"]]
    assert lonely["uuid"] not in {i["uuid"] for i in remaining.body["inventories"]}


# ----- host allocation -------------------------------------------------------------------


async def test_allocator_places_vms_where_the_image_is(
    node: ManagementNode, admin: ApiClient
) -> None:
    with_image, without = await add_zone(admin, "with-image"), await add_zone(admin, "without")
    hosts: dict[str, dict[str, Any]] = {}
    for zone in (with_image, without):
        cluster = await add_cluster(admin, zone["uuid"], f"c-{zone['name']}")
        hosts[zone["uuid"]] = await add_kvm_host(admin, cluster["uuid"], f"10.9.3.{len(hosts) + 1}")
    bs = await _add_bs(admin, "10.9.3.100")
    image = await _add_image(admin, [bs["uuid"]], GIB)

    def request() -> AllocateHostMsg:
        return AllocateHostMsg(cpu_num=1, memory_size=GIB, image_uuid=image["uuid"], dry_run=True)

    # Not attached to any zone yet: no host can reach the image.
    refused = await node.context.bus.call(request())
    assert refused.error is not None
    assert refused.error.code == "HOST.1101"
    assert refused.error.details["filter"] == "image"

    await admin.create(f"/zones/{with_image['uuid']}/backup-storage/{bs['uuid']}", {})
    placed = await node.context.bus.request(request(), AllocateHostReply)
    assert [h.uuid for h in placed.candidates] == [hosts[with_image["uuid"]]["uuid"]]
    anywhere = await node.context.bus.request(
        AllocateHostMsg(cpu_num=1, memory_size=GIB, dry_run=True), AllocateHostReply
    )
    assert len(anywhere.candidates) == 2
