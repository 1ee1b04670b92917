"""A whole data center built over REST, the way an operator builds one, and queried back
across every relation: zone, cluster, three simulated KVM hosts, local and NFS primary
storage, SFTP backup storage with an image, an L2 network, an L3 network with a range and
DNS, instance and disk offerings. Then the zone is deleted and nothing is left."""

from __future__ import annotations

from typing import Any

from tests.support.api_client import ApiClient
from tests.support.datacenter import add_datacenter

GIB = 1024**3
TIB = 1024**4
IMAGE_SIZE = 3 * GIB
HOST_IPS = ["10.20.0.1", "10.20.0.2", "10.20.0.3"]


async def _attach(admin: ApiClient, path: str) -> dict[str, Any]:
    answer = await admin.finish(await admin.request("POST", path, json={"params": {}}))
    assert answer.status == 200, answer.body
    inventory: dict[str, Any] = answer.body["inventory"]
    return inventory


async def _uuids(admin: ApiClient, path: str, condition: str) -> set[str]:
    answer = await admin.query(path, condition)
    assert answer.status == 200, answer.body
    return {item["uuid"] for item in answer.body["inventories"]}


async def test_build_query_and_delete_a_data_center(admin: ApiClient) -> None:
    zone, cluster, hosts = await add_datacenter(admin, "dc", HOST_IPS)
    z, c = zone["uuid"], cluster["uuid"]
    assert {h["status"] for h in hosts} == {"Connected"}

    local = await admin.inventory(
        "/primary-storage/local-storage", {"name": "local", "url": "/zstack_ps", "zoneUuid": z}
    )
    nfs = await admin.inventory(
        "/primary-storage/nfs", {"name": "nfs", "url": "nfs.example:/share", "zoneUuid": z}
    )
    for ps in (local, nfs):
        attached = await _attach(admin, f"/clusters/{c}/primary-storage/{ps['uuid']}")
        assert attached["attachedClusterUuids"] == [c]

    bs = await admin.inventory(
        "/backup-storage/sftp",
        {
            "name": "bs",
            "url": "/bs",
            "hostname": "10.20.1.1",
            "username": "root",
            "password": "pw",
        },
    )
    await _attach(admin, f"/zones/{z}/backup-storage/{bs['uuid']}")
    image = await admin.inventory(
        "/images",
        {
            "name": "centos",
            "url": f"http://images.example/centos.qcow2?size={IMAGE_SIZE}",
            "format": "qcow2",
            "mediaType": "RootVolumeTemplate",
            "platform": "Linux",
            "backupStorageUuids": [bs["uuid"]],
        },
    )
    assert image["status"] == "Ready"
    assert image["size"] == IMAGE_SIZE

    l2 = await admin.inventory(
        "/l2-networks/no-vlan", {"name": "l2", "zoneUuid": z, "physicalInterface": "eth0"}
    )
    await _attach(admin, f"/l2-networks/{l2['uuid']}/clusters/{c}")
    l3 = await admin.inventory(
        "/l3-networks", {"name": "l3", "l2NetworkUuid": l2["uuid"], "category": "Private"}
    )
    ip_range = await admin.inventory(
        f"/l3-networks/{l3['uuid']}/ip-ranges/by-cidr",
        {"name": "r", "networkCidr": "192.168.10.0/24"},
    )
    assert ip_range["gateway"] == "192.168.10.1"
    await admin.inventory(f"/l3-networks/{l3['uuid']}/dns", {"dns": "10.20.2.53"})
    offering = await admin.inventory(
        "/instance-offerings", {"name": "small", "cpuNum": 2, "memorySize": 2 * GIB}
    )
    disk = await admin.inventory("/disk-offerings", {"name": "d10", "diskSize": 10 * GIB})

    # Capacities as the hosts and storage reported them (simulator defaults).
    ps_read = (await admin.query("/primary-storage", f"uuid={local['uuid']}")).body
    assert ps_read["inventories"][0]["totalCapacity"] == 3 * 2 * TIB
    nfs_read = (await admin.query("/primary-storage", f"uuid={nfs['uuid']}")).body
    assert nfs_read["inventories"][0]["totalCapacity"] == 10 * TIB
    bs_read = (await admin.query("/backup-storage", f"uuid={bs['uuid']}")).body["inventories"][0]
    assert bs_read["totalCapacity"] - bs_read["availableCapacity"] == IMAGE_SIZE
    l3_read = (await admin.query("/l3-networks", f"uuid={l3['uuid']}")).body["inventories"][0]
    assert [r["uuid"] for r in l3_read["ipRanges"]] == [ip_range["uuid"]]
    assert l3_read["dns"] == ["10.20.2.53"]

    # Joins across relations, as ZStack's query API resolves them.
    host_uuids = {h["uuid"] for h in hosts}
    assert await _uuids(admin, "/hosts", "zone.name=dc-zone") == host_uuids
    assert await _uuids(admin, "/zones", f"host.managementIp={HOST_IPS[1]}") == {z}
    assert await _uuids(admin, "/hosts", "cluster.primaryStorage.type=NFS") == host_uuids
    assert await _uuids(admin, "/primary-storage", "cluster.name=dc-cluster") == {
        local["uuid"],
        nfs["uuid"],
    }
    assert await _uuids(admin, "/l3-networks", f"l2Network.cluster.uuid={c}") == {l3["uuid"]}
    assert await _uuids(
        admin, "/l3-networks/ip-ranges", "l3Network.l2Network.physicalInterface=eth0"
    ) == {ip_range["uuid"]}
    assert await _uuids(admin, "/backup-storage", f"zone.uuid={z}") == {bs["uuid"]}
    assert await _uuids(admin, "/images", "backupStorage.zone.name=dc-zone") == {image["uuid"]}
    assert await _uuids(admin, "/zones", "backupStorage.image.name=centos") == {z}
    assert await _uuids(admin, "/instance-offerings", "cpuNum=2") == {offering["uuid"]}
    assert await _uuids(admin, "/disk-offerings", f"diskSize={10 * GIB}") == {disk["uuid"]}

    deleted = await admin.finish(await admin.request("DELETE", f"/zones/{z}"))
    assert deleted.status == 200, deleted.body
    for path in ("/clusters", "/hosts", "/primary-storage", "/l2-networks", "/l3-networks"):
        left = await admin.request("GET", path)
        assert left.body["inventories"] == [], (path, left.body)
    # Backup storage outlives its zone (it is only detached), as in ZStack.
    assert await _uuids(admin, "/backup-storage", f"uuid={bs['uuid']}") == {bs["uuid"]}
    assert await _uuids(admin, "/backup-storage", f"zone.uuid={z}") == set()
