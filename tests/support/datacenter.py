"""Build a data center over REST the same way in every e2e test: a zone, a KVM cluster,
simulated KVM hosts. Each helper answers the created resource's inventory (camelCase, as
the API returns it) and fails the test with the API's answer when the create fails.
Also: read a host back, wait for a host status, change a global config."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from tests.support.api_client import ApiClient

# The simulator accepts any credentials for a machine not declared with a password.
DEFAULT_HOST_USERNAME = "root"
DEFAULT_HOST_PASSWORD = "password"


async def add_zone(admin: ApiClient, name: str, **params: Any) -> dict[str, Any]:
    """Create a zone (``POST /zones``); extra ``params`` go into the body as given."""
    return await admin.inventory("/zones", {"name": name, **params})


async def add_cluster(admin: ApiClient, zone_uuid: str, name: str, **params: Any) -> dict[str, Any]:
    """Create a KVM cluster in ``zone_uuid`` (``POST /clusters``)."""
    body = {"zoneUuid": zone_uuid, "name": name, "hypervisorType": "KVM", **params}
    return await admin.inventory("/clusters", body)


async def add_kvm_host(
    admin: ApiClient,
    cluster_uuid: str,
    ip: str,
    name: str | None = None,
    **params: Any,
) -> dict[str, Any]:
    """Add a (simulated) KVM host at management IP ``ip`` to ``cluster_uuid``
    (``POST /hosts/kvm``) and wait until it is connected. ``params`` override or add body
    fields (``username``, ``password``, ``sshPort``, ``description``, ``resourceUuid``);
    ``systemTags`` goes next to ``params`` as the API expects."""
    system_tags = params.pop("systemTags", None)
    body = {
        "name": name or f"host-{ip}",
        "managementIp": ip,
        "clusterUuid": cluster_uuid,
        "username": DEFAULT_HOST_USERNAME,
        "password": DEFAULT_HOST_PASSWORD,
        **params,
    }
    top: dict[str, Any] = {"systemTags": system_tags} if system_tags else {}
    return await admin.inventory("/hosts/kvm", body, **top)


async def add_datacenter(
    admin: ApiClient, prefix: str, host_ips: list[str]
) -> tuple[dict[str, Any], dict[str, Any], list[dict[str, Any]]]:
    """A zone, a KVM cluster in it and one host per IP, named after ``prefix``."""
    zone = await add_zone(admin, f"{prefix}-zone")
    cluster = await add_cluster(admin, zone["uuid"], f"{prefix}-cluster")
    hosts = [
        await add_kvm_host(admin, cluster["uuid"], ip, name=f"{prefix}-host-{i}")
        for i, ip in enumerate(host_ips)
    ]
    return zone, cluster, hosts


async def get_host(admin: ApiClient, uuid: str) -> dict[str, Any]:
    """The host's inventory as ``GET /hosts/{uuid}`` answers it."""
    answer = await admin.request("GET", f"/hosts/{uuid}")
    assert answer.status == 200, answer.body
    inventories: list[dict[str, Any]] = answer.body["inventories"]
    assert len(inventories) == 1, f"no host {uuid}"
    return inventories[0]


async def wait_for(check: Callable[[], Awaitable[bool]], timeout: float = 5.0) -> None:
    """Poll ``check`` every 50 ms until it answers True; fail the test after ``timeout``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await check():
        assert loop.time() < deadline, f"condition not reached within {timeout} s"
        await asyncio.sleep(0.05)


async def wait_host_status(
    admin: ApiClient, uuid: str, status: str, timeout: float = 5.0
) -> dict[str, Any]:
    """Wait until the host's status is ``status`` (Connected, Disconnected, ...)."""
    host: dict[str, Any] = {}

    async def reached() -> bool:
        host.update(await get_host(admin, uuid))
        return bool(host["status"] == status)

    await wait_for(reached, timeout)
    return host


async def set_global_config(admin: ApiClient, category: str, name: str, value: object) -> None:
    """``UpdateGlobalConfig``; every node applies it (e.g. ``host ping.interval``)."""
    path = f"/global-configurations/{category}/{name}/actions"
    answer = await admin.action(path, "updateGlobalConfig", {"value": str(value)})
    assert answer.status == 200, answer.body


async def _attach(admin: ApiClient, path: str) -> dict[str, Any]:
    answer = await admin.finish(await admin.request("POST", path, json={"params": {}}))
    assert answer.status == 200, answer.body
    inventory: dict[str, Any] = answer.body["inventory"]
    return inventory


GIB = 1024**3


async def add_full_datacenter(
    admin: ApiClient,
    prefix: str,
    host_ips: list[str],
    *,
    storage: tuple[str, ...] = ("local", "nfs"),
    cidr: str = "192.168.10.0/24",
    image_size: int = GIB,
    cpu_num: int = 2,
    memory_size: int = 2 * GIB,
    disk_size: int = 10 * GIB,
) -> dict[str, Any]:
    """Everything a VM needs, built over REST as an operator would (the steps of
    tests/e2e/test_datacenter.py): a zone, a KVM cluster with one simulated host per IP,
    primary storage (``storage``: "local" and/or "nfs", attached to the cluster), an SFTP
    backup storage (at the first host's IP with last byte 254) holding a Ready qcow2
    image of ``image_size`` bytes, a NoVlan L2 on eth0 with an L3 on ``cidr``, an instance
    offering and a disk offering. Answers the inventories by role: ``zone``, ``cluster``,
    ``hosts`` (a list), ``local`` / ``nfs`` (when made), ``bs``, ``image``, ``l2``,
    ``l3``, ``ip_range``, ``offering``, ``disk_offering``."""
    zone, cluster, hosts = await add_datacenter(admin, prefix, host_ips)
    z, c = zone["uuid"], cluster["uuid"]
    made: dict[str, Any] = {"zone": zone, "cluster": cluster, "hosts": hosts}
    if "local" in storage:
        made["local"] = await admin.inventory(
            "/primary-storage/local-storage",
            {"name": f"{prefix}-local", "url": "/zstack_ps", "zoneUuid": z},
        )
    if "nfs" in storage:
        made["nfs"] = await admin.inventory(
            "/primary-storage/nfs",
            {"name": f"{prefix}-nfs", "url": f"nfs.{prefix}.example:/share", "zoneUuid": z},
        )
    for role in ("local", "nfs"):
        if role in made:
            await _attach(admin, f"/clusters/{c}/primary-storage/{made[role]['uuid']}")
    bs_ip = host_ips[0].rsplit(".", 1)[0] + ".254"
    bs = await admin.inventory(
        "/backup-storage/sftp",
        {
            "name": f"{prefix}-bs",
            "url": "/bs",
            "hostname": bs_ip,
            "username": "root",
            "password": "pw",
        },
    )
    await _attach(admin, f"/zones/{z}/backup-storage/{bs['uuid']}")
    made["bs"] = bs
    made["image"] = await admin.inventory(
        "/images",
        {
            "name": f"{prefix}-image",
            "url": f"http://images.example/{prefix}.qcow2?size={image_size}",
            "format": "qcow2",
            "mediaType": "RootVolumeTemplate",
            "platform": "Linux",
            "backupStorageUuids": [bs["uuid"]],
        },
    )
    l2 = await admin.inventory(
        "/l2-networks/no-vlan", {"name": f"{prefix}-l2", "zoneUuid": z, "physicalInterface": "eth0"}
    )
    await _attach(admin, f"/l2-networks/{l2['uuid']}/clusters/{c}")
    l3 = await admin.inventory(
        "/l3-networks", {"name": f"{prefix}-l3", "l2NetworkUuid": l2["uuid"], "category": "Private"}
    )
    made["ip_range"] = await admin.inventory(
        f"/l3-networks/{l3['uuid']}/ip-ranges/by-cidr",
        {"name": f"{prefix}-range", "networkCidr": cidr},
    )
    made["l2"], made["l3"] = l2, l3
    made["offering"] = await admin.inventory(
        "/instance-offerings",
        {"name": f"{prefix}-offering", "cpuNum": cpu_num, "memorySize": memory_size},
    )
    made["disk_offering"] = await admin.inventory(
        "/disk-offerings", {"name": f"{prefix}-disk", "diskSize": disk_size}
    )
    return made
