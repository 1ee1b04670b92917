"""Primary storage end to end: local and NFS storage added over REST, attached to a
cluster of simulated hosts, capacity booked from what the agents report, queries with
joins, bad input that changes nothing, a mount failure rolled back, hosts joining and
leaving, detach, delete, zone cascade, and the capacity messages later issues use."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import func, select

from simulator import Simulator
from tests.support.api_client import ApiClient
from tests.support.datacenter import add_cluster, add_datacenter, add_kvm_host, add_zone
from zstackpy.core.errors import ZError
from zstackpy.core.plugin import PluginRegistry
from zstackpy.node.node import ManagementNode
from zstackpy.services.host.messages import AllocateHostMsg, AllocateHostReply
from zstackpy.services.primary_storage.extensions import (
    PrimaryStorageDetachExtension,
    PrimaryStorageDetachRequest,
)
from zstackpy.services.primary_storage.messages import (
    AllocatePrimaryStorageCapacityMsg,
    AllocatePrimaryStorageCapacityReply,
    PrimaryStorageErr,
    ReturnPrimaryStorageCapacityMsg,
)
from zstackpy.services.primary_storage.models import (
    LocalStorageHostRefVO,
    PrimaryStorageClusterRefVO,
    PrimaryStorageVO,
)

GIB = 1 << 30
TIB = 1 << 40
NFS_URL = "10.99.0.1:/exports/ps"


class _VolumeStandIn:
    """Plays the volume service's PrimaryStorageDetachExtension: refuses to detach the
    storage whose uuid is in ``busy``, as volumes of a cluster's VMs would."""

    name = "primaryStorageTestVolumes"

    def __init__(self) -> None:
        self.busy: set[str] = set()

    def setup(self, registry: PluginRegistry) -> None:
        registry.add_extension(PrimaryStorageDetachExtension, self)

    async def check_detach(self, request: PrimaryStorageDetachRequest) -> None:
        if request.primary_storage_uuid in self.busy:
            raise ZError(
                PrimaryStorageErr.IN_USE,
                f"volumes in cluster {request.cluster_uuid} are on the storage",
                uuid=request.primary_storage_uuid,
            )


VOLUMES = _VolumeStandIn()


@pytest.fixture
def node_overrides() -> dict[str, object]:
    return {"plugins": [f"{__name__}:VOLUMES"]}


async def _add_local(admin: ApiClient, zone_uuid: str, name: str = "local") -> dict[str, Any]:
    return await admin.inventory(
        "/primary-storage/local-storage", {"name": name, "url": "/zstack_ps", "zoneUuid": zone_uuid}
    )


async def _add_nfs(
    admin: ApiClient, zone_uuid: str, url: str = NFS_URL, name: str = "nfs"
) -> dict[str, Any]:
    return await admin.inventory(
        "/primary-storage/nfs", {"name": name, "url": url, "zoneUuid": zone_uuid}
    )


async def _attach(admin: ApiClient, cluster_uuid: str, ps_uuid: str) -> Any:
    return await admin.create(f"/clusters/{cluster_uuid}/primary-storage/{ps_uuid}", {})


async def _attached(admin: ApiClient, cluster_uuid: str, ps_uuid: str) -> dict[str, Any]:
    answer = await _attach(admin, cluster_uuid, ps_uuid)
    assert answer.status == 200, answer.body
    inventory: dict[str, Any] = answer.body["inventory"]
    return inventory


async def _ps(admin: ApiClient, uuid: str) -> dict[str, Any]:
    answer = await admin.request("GET", f"/primary-storage/{uuid}")
    assert answer.status == 200, answer.body
    [inventory] = answer.body["inventories"]
    return dict(inventory)


async def _row_counts(node: ManagementNode) -> tuple[int, int, int]:
    async with node.context.db.session() as session:
        counts = [
            (await session.execute(select(func.count()).select_from(table))).scalar_one()
            for table in (PrimaryStorageVO, PrimaryStorageClusterRefVO, LocalStorageHostRefVO)
        ]
    return counts[0], counts[1], counts[2]


# ----- add, attach, capacity, queries -------------------------------------------------


async def test_attach_books_local_per_host_and_nfs_per_share(
    admin: ApiClient, sim: Simulator
) -> None:
    ips = ["10.10.0.1", "10.10.0.2", "10.10.0.3"]
    for i, ip in enumerate(ips):
        sim.declare(ip, local_storage_capacity=(i + 1) * TIB)
    sim.declare_nfs(NFS_URL, capacity=5 * TIB)
    zone, cluster, hosts = await add_datacenter(admin, "dc", ips)

    local = await _add_local(admin, zone["uuid"])
    nfs = await _add_nfs(admin, zone["uuid"])
    assert (local["type"], nfs["type"]) == ("LocalStorage", "NFS")
    assert local["state"] == nfs["state"] == "Enabled"
    assert local["status"] == nfs["status"] == "Connected"
    assert local["totalCapacity"] == nfs["totalCapacity"] == 0
    assert local["mountPath"] == "/zstack_ps"
    assert nfs["mountPath"] == f"/opt/zstack/nfsprimarystorage/prim-{nfs['uuid']}"
    assert nfs["attachedClusterUuids"] == []

    local = await _attached(admin, cluster["uuid"], local["uuid"])
    nfs = await _attached(admin, cluster["uuid"], nfs["uuid"])
    assert local["attachedClusterUuids"] == nfs["attachedClusterUuids"] == [cluster["uuid"]]
    assert local["totalCapacity"] == local["availableCapacity"] == 6 * TIB
    assert local["totalPhysicalCapacity"] == 6 * TIB
    assert nfs["totalCapacity"] == nfs["availableCapacity"] == 5 * TIB
    for host in hosts:
        assert sim.machine(host["managementIp"]).nfs_mounts == {nfs["uuid"]: NFS_URL}

    capacity = await admin.request(
        "GET", "/primary-storage/capacities", params={"zoneUuids": zone["uuid"]}
    )
    assert capacity.status == 200, capacity.body
    assert capacity.body["totalCapacity"] == 11 * TIB
    per_host = await admin.request(
        "GET", f"/primary-storage/{local['uuid']}", params={"fields": "uuid"}
    )
    assert per_host.body["inventories"] == [{"uuid": local["uuid"]}]


async def test_queries_join_zones_clusters_and_storage(admin: ApiClient) -> None:
    zone, cluster, _ = await add_datacenter(admin, "q", ["10.11.0.1"])
    other_zone, other_cluster, _ = await add_datacenter(admin, "other", [])
    local = await _add_local(admin, zone["uuid"])
    nfs = await _add_nfs(admin, zone["uuid"])
    lonely = await _add_nfs(admin, other_zone["uuid"], url="10.99.0.9:/lonely", name="lonely")
    await _attached(admin, cluster["uuid"], local["uuid"])
    await _attached(admin, cluster["uuid"], nfs["uuid"])

    def uuids(answer: Any) -> list[str]:
        assert answer.status == 200, answer.body
        return sorted(i["uuid"] for i in answer.body["inventories"])

    in_cluster = await admin.query("/primary-storage", f"cluster.uuid={cluster['uuid']}")
    assert uuids(in_cluster) == sorted([local["uuid"], nfs["uuid"]])
    by_zone = await admin.query("/primary-storage", "zone.name=other-zone")
    assert uuids(by_zone) == [lonely["uuid"]]
    nfs_only = await admin.query("/primary-storage", "type=NFS", "totalCapacity>0")
    assert uuids(nfs_only) == [nfs["uuid"]]
    zones = await admin.query("/zones", "primaryStorage.type=LocalStorage")
    assert uuids(zones) == [zone["uuid"]]
    clusters = await admin.query("/clusters", "primaryStorage.type=NFS")
    assert uuids(clusters) == [cluster["uuid"]]
    hosts = await admin.query("/hosts", f"cluster.primaryStorage.uuid={local['uuid']}")
    assert len(uuids(hosts)) == 1
    none = await admin.query("/clusters", f"primaryStorageRef.primaryStorageUuid={lonely['uuid']}")
    assert uuids(none) == []
    assert other_cluster["uuid"] not in uuids(await admin.query("/clusters", "zone.name=q-zone"))


# ----- bad input ----------------------------------------------------------------------


async def test_bad_input_is_refused_and_changes_nothing(
    admin: ApiClient, node: ManagementNode
) -> None:
    zone, cluster, _ = await add_datacenter(admin, "bad", ["10.12.0.1"])
    other_zone = await add_zone(admin, "elsewhere")
    other_cluster = await add_cluster(admin, other_zone["uuid"], "elsewhere-cluster")
    for path, url in (
        ("/primary-storage/nfs", "/no/server"),
        ("/primary-storage/nfs", "server:relative"),
        ("/primary-storage/nfs", "two words:/x"),
        ("/primary-storage/local-storage", "relative/dir"),
        ("/primary-storage/local-storage", "/proc/ps"),
    ):
        answer = await admin.create(path, {"name": "x", "url": url, "zoneUuid": zone["uuid"]})
        assert answer.error["code"] == "PS.1001", (url, answer.body)
    missing_zone = await admin.create(
        "/primary-storage/nfs", {"name": "x", "url": NFS_URL, "zoneUuid": "0" * 32}
    )
    assert missing_zone.error["code"] == "SYS.1003"
    assert await _row_counts(node) == (0, 0, 0)

    nfs = await _add_nfs(admin, zone["uuid"])
    wrong_zone = await _attach(admin, other_cluster["uuid"], nfs["uuid"])
    assert wrong_zone.error["code"] == "PS.1002"
    assert wrong_zone.error["details"]["cluster_zone_uuid"] == other_zone["uuid"]
    await _attached(admin, cluster["uuid"], nfs["uuid"])
    twice = await _attach(admin, cluster["uuid"], nfs["uuid"])
    assert twice.error["code"] == "PS.1003"
    still_attached = await admin.delete(f"/primary-storage/{nfs['uuid']}")
    assert still_attached.error["code"] == "PS.1005"
    assert cluster["uuid"] in still_attached.error["description"]
    new_url = await admin.action(
        f"/primary-storage/{nfs['uuid']}/actions", "updatePrimaryStorage", {"url": "h:/other"}
    )
    assert new_url.error["code"] == "PS.1005"
    not_attached = await admin.delete(
        f"/clusters/{other_cluster['uuid']}/primary-storage/{nfs['uuid']}"
    )
    assert not_attached.error["code"] == "PS.1004"
    assert await _row_counts(node) == (1, 1, 0)
    assert (await _ps(admin, nfs["uuid"]))["url"] == NFS_URL


async def test_a_failed_mount_rolls_the_attach_back(admin: ApiClient, sim: Simulator) -> None:
    ips = ["10.13.0.1", "10.13.0.2", "10.13.0.3"]
    _, cluster, _ = await add_datacenter(admin, "fault", ips)
    zone_uuid = cluster["zoneUuid"]
    nfs = await _add_nfs(admin, zone_uuid)
    sim.set_fault(ips[1], "/nfsprimarystorage/mount", fail="mount.nfs: access denied by server")

    answer = await _attach(admin, cluster["uuid"], nfs["uuid"])
    assert answer.error["code"] == "PS.1007"
    assert "access denied" in answer.error["description"]
    assert answer.error["details"]["failed_host_uuids"] == [answer.error["details"]["host_uuid"]]
    after = await _ps(admin, nfs["uuid"])
    assert after["attachedClusterUuids"] == []
    assert after["totalCapacity"] == 0
    for ip in ips:  # the hosts that mounted were unmounted again
        assert not sim.machine(ip).nfs_mounts

    sim.clear_faults(ips[1])
    attached = await _attached(admin, cluster["uuid"], nfs["uuid"])
    assert attached["attachedClusterUuids"] == [cluster["uuid"]]


# ----- hosts joining and leaving ------------------------------------------------------


async def test_hosts_added_later_are_prepared_and_counted_once(
    admin: ApiClient, sim: Simulator
) -> None:
    sim.declare("10.14.0.1", local_storage_capacity=TIB)
    sim.declare("10.14.0.2", local_storage_capacity=2 * TIB)
    zone, cluster, [first] = await add_datacenter(admin, "late", ["10.14.0.1"])
    local = await _attached(admin, cluster["uuid"], (await _add_local(admin, zone["uuid"]))["uuid"])
    nfs = await _attached(admin, cluster["uuid"], (await _add_nfs(admin, zone["uuid"]))["uuid"])
    assert local["totalCapacity"] == TIB

    second = await add_kvm_host(admin, cluster["uuid"], "10.14.0.2")
    assert (await _ps(admin, local["uuid"]))["totalCapacity"] == 3 * TIB
    assert sim.machine("10.14.0.2").nfs_mounts == {nfs["uuid"]: NFS_URL}

    for host in (first, second):
        reconnected = await admin.action(f"/hosts/{host['uuid']}/actions", "reconnectHost", {})
        assert reconnected.status == 200, reconnected.body
    again = await _ps(admin, local["uuid"])
    assert again["totalCapacity"] == again["availableCapacity"] == 3 * TIB

    deleted = await admin.delete(f"/hosts/{second['uuid']}")
    assert deleted.status == 200, deleted.body
    assert (await _ps(admin, local["uuid"]))["totalCapacity"] == TIB


async def test_a_host_that_cannot_mount_is_not_added(
    admin: ApiClient, sim: Simulator, node: ManagementNode
) -> None:
    zone, cluster, _ = await add_datacenter(admin, "nomount", ["10.21.0.1"])
    local = await _attached(admin, cluster["uuid"], (await _add_local(admin, zone["uuid"]))["uuid"])
    await _attached(admin, cluster["uuid"], (await _add_nfs(admin, zone["uuid"]))["uuid"])
    sim.declare("10.21.0.2")
    sim.set_fault("10.21.0.2", "/nfsprimarystorage/mount", fail="no route to the NFS server")

    answer = await admin.create(
        "/hosts/kvm",
        {
            "name": "h2",
            "managementIp": "10.21.0.2",
            "clusterUuid": cluster["uuid"],
            "username": "root",
            "password": "password",
        },
    )
    assert answer.error["code"] == "PS.1007"
    assert "no route to the NFS server" in answer.error["description"]
    assert (await _ps(admin, local["uuid"]))["totalCapacity"] == 2 * TIB  # the first host's
    assert await _row_counts(node) == (2, 2, 1)
    hosts = await admin.query("/hosts", count="true")
    assert hosts.body["total"] == 1


async def test_detach_unmounts_and_drops_host_capacity(
    admin: ApiClient, sim: Simulator, node: ManagementNode
) -> None:
    zone, cluster, hosts = await add_datacenter(admin, "det", ["10.15.0.1", "10.15.0.2"])
    local = await _attached(admin, cluster["uuid"], (await _add_local(admin, zone["uuid"]))["uuid"])
    nfs = await _attached(admin, cluster["uuid"], (await _add_nfs(admin, zone["uuid"]))["uuid"])
    assert await _row_counts(node) == (2, 2, 2)

    VOLUMES.busy.add(nfs["uuid"])
    try:
        in_use = await admin.delete(f"/clusters/{cluster['uuid']}/primary-storage/{nfs['uuid']}")
    finally:
        VOLUMES.busy.discard(nfs["uuid"])
    assert in_use.error["code"] == "PS.1006"
    assert (await _ps(admin, nfs["uuid"]))["attachedClusterUuids"] == [cluster["uuid"]]
    assert sim.machine(hosts[0]["managementIp"]).nfs_mounts == {nfs["uuid"]: NFS_URL}

    for ps in (local, nfs):
        answer = await admin.delete(f"/clusters/{cluster['uuid']}/primary-storage/{ps['uuid']}")
        assert answer.status == 200, answer.body
        assert answer.body["inventory"]["attachedClusterUuids"] == []
    assert (await _ps(admin, local["uuid"]))["totalCapacity"] == 0
    for host in hosts:
        assert not sim.machine(host["managementIp"]).nfs_mounts
    assert await _row_counts(node) == (2, 0, 0)

    for ps in (local, nfs):
        deleted = await admin.delete(f"/primary-storage/{ps['uuid']}")
        assert deleted.status == 200, deleted.body
    assert await _row_counts(node) == (0, 0, 0)


async def test_cluster_delete_detaches_its_storage(admin: ApiClient, node: ManagementNode) -> None:
    zone, cluster, _ = await add_datacenter(admin, "cdel", ["10.20.0.1", "10.20.0.2"])
    local = await _attached(admin, cluster["uuid"], (await _add_local(admin, zone["uuid"]))["uuid"])
    nfs = await _attached(admin, cluster["uuid"], (await _add_nfs(admin, zone["uuid"]))["uuid"])
    VOLUMES.busy.add(nfs["uuid"])  # a cluster's own delete asks no detach extension
    try:
        deleted = await admin.delete(f"/clusters/{cluster['uuid']}")
    finally:
        VOLUMES.busy.discard(nfs["uuid"])
    assert deleted.status == 200, deleted.body
    for ps in (local, nfs):
        after = await _ps(admin, ps["uuid"])
        assert after["attachedClusterUuids"] == []
    assert (await _ps(admin, local["uuid"]))["totalCapacity"] == 0
    assert await _row_counts(node) == (2, 0, 0)


async def test_zone_delete_cascades_to_storage(admin: ApiClient, node: ManagementNode) -> None:
    zone, cluster, _ = await add_datacenter(admin, "cas", ["10.16.0.1", "10.16.0.2"])
    await _attached(admin, cluster["uuid"], (await _add_local(admin, zone["uuid"]))["uuid"])
    await _attached(admin, cluster["uuid"], (await _add_nfs(admin, zone["uuid"]))["uuid"])
    kept = await add_zone(admin, "kept")
    await _add_nfs(admin, kept["uuid"], url="10.99.0.2:/kept")

    deleted = await admin.delete(f"/zones/{zone['uuid']}")
    assert deleted.status == 200, deleted.body
    assert await _row_counts(node) == (1, 0, 0)
    left = await admin.query("/primary-storage")
    assert [ps["zoneUuid"] for ps in left.body["inventories"]] == [kept["uuid"]]


# ----- state, update, reconnect -------------------------------------------------------


async def test_state_update_and_reconnect(admin: ApiClient, sim: Simulator) -> None:
    zone, cluster, [host] = await add_datacenter(admin, "st", ["10.17.0.1"])
    nfs = await _attached(admin, cluster["uuid"], (await _add_nfs(admin, zone["uuid"]))["uuid"])
    actions = f"/primary-storage/{nfs['uuid']}/actions"

    updated = await admin.action(actions, "updatePrimaryStorage", {"name": "renamed"})
    assert updated.body["inventory"]["name"] == "renamed"
    for event, state in (
        ("maintain", "Maintenance"),
        ("disable", "Disabled"),
        ("enable", "Enabled"),
    ):
        changed = await admin.action(actions, "changePrimaryStorageState", {"stateEvent": event})
        assert changed.body["inventory"]["state"] == state
    bad_event = await admin.action(actions, "changePrimaryStorageState", {"stateEvent": "nap"})
    assert bad_event.error["code"] == "SYS.1007"

    sim.declare_nfs(NFS_URL, capacity=20 * TIB)  # the share grew
    reconnected = await admin.action(actions, "reconnectPrimaryStorage", {})
    assert reconnected.status == 200, reconnected.body
    assert reconnected.body["inventory"]["status"] == "Connected"
    assert reconnected.body["inventory"]["totalCapacity"] == 20 * TIB

    sim.set_fault(host["managementIp"], "/nfsprimarystorage/mount", fail="stale file handle")
    failed = await admin.action(actions, "reconnectPrimaryStorage", {})
    assert failed.error["code"] == "PS.1007"
    assert (await _ps(admin, nfs["uuid"]))["status"] == "Disconnected"


# ----- capacity over the bus ----------------------------------------------------------


async def test_concurrent_reservations_never_overdraw(
    admin: ApiClient, sim: Simulator, node: ManagementNode
) -> None:
    sim.declare_nfs(NFS_URL, capacity=100 * GIB)
    zone, cluster, _ = await add_datacenter(admin, "cap", ["10.18.0.1"])
    nfs = await _attached(admin, cluster["uuid"], (await _add_nfs(admin, zone["uuid"]))["uuid"])
    bus = node.context.bus

    replies = await asyncio.gather(
        *(
            bus.call(
                AllocatePrimaryStorageCapacityMsg(cluster_uuids=[cluster["uuid"]], size=7 * GIB)
            )
            for _ in range(20)
        )
    )
    won = [r for r in replies if r.success]
    assert len(won) == 14  # 14 x 7 GiB fit in 100 GiB, the 15th does not
    assert {r.error.code for r in replies if r.error is not None} == {"PS.1009"}
    assert all(
        isinstance(r, AllocatePrimaryStorageCapacityReply) and r.primary_storage_uuid == nfs["uuid"]
        for r in won
    )
    assert (await _ps(admin, nfs["uuid"]))["availableCapacity"] == 2 * GIB

    named = await bus.call(
        AllocatePrimaryStorageCapacityMsg(primary_storage_uuid=nfs["uuid"], size=3 * GIB)
    )
    assert named.error is not None
    assert named.error.code == "PS.1008"
    for _ in won:
        back = await bus.call(
            ReturnPrimaryStorageCapacityMsg(primary_storage_uuid=nfs["uuid"], size=7 * GIB)
        )
        back.raise_if_error()
    back = await bus.call(
        ReturnPrimaryStorageCapacityMsg(primary_storage_uuid=nfs["uuid"], size=GIB)
    )
    back.raise_if_error()
    assert (await _ps(admin, nfs["uuid"]))["availableCapacity"] == 100 * GIB  # never past total


async def test_local_reservations_and_the_host_allocator_filter(
    admin: ApiClient, sim: Simulator, node: ManagementNode
) -> None:
    sim.declare("10.19.0.1", local_storage_capacity=100 * GIB)
    sim.declare("10.19.0.2", local_storage_capacity=50 * GIB)
    zone, cluster, [big, small] = await add_datacenter(admin, "alloc", ["10.19.0.1", "10.19.0.2"])
    local = await _attached(admin, cluster["uuid"], (await _add_local(admin, zone["uuid"]))["uuid"])
    bus = node.context.bus

    on_small = await bus.request(
        AllocatePrimaryStorageCapacityMsg(
            cluster_uuids=[cluster["uuid"]], host_uuid=small["uuid"], size=40 * GIB
        ),
        AllocatePrimaryStorageCapacityReply,
    )
    assert (on_small.primary_storage_uuid, on_small.host_uuid) == (local["uuid"], small["uuid"])
    assert (await _ps(admin, local["uuid"]))["availableCapacity"] == 110 * GIB

    async def hosts_for(disk_size: int) -> Any:
        return await bus.call(
            AllocateHostMsg(
                cpu_num=1,
                memory_size=GIB,
                cluster_uuids=[cluster["uuid"]],
                disk_size=disk_size,
                dry_run=True,
            )
        )

    fits_both = await hosts_for(10 * GIB)
    assert isinstance(fits_both, AllocateHostReply), fits_both
    assert {c.uuid for c in fits_both.candidates} == {big["uuid"], small["uuid"]}
    fits_big = await hosts_for(20 * GIB)
    assert isinstance(fits_big, AllocateHostReply), fits_big
    assert [c.uuid for c in fits_big.candidates] == [big["uuid"]]
    too_big = await hosts_for(101 * GIB)
    assert too_big.error is not None
    assert too_big.error.code == "HOST.1101"
    assert "primary storage" in too_big.error.description
