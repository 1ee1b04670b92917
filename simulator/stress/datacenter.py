"""A data center of simulated hosts built over the REST API, as an operator would: a zone,
a KVM cluster, NFS primary storage, SFTP backup storage with one image, a NoVlan L2 with an
L3 sized for the VMs, an instance offering, then the hosts, many at a time.

In simulated mode a management IP is a label: the simulator plays each machine.
"""

from __future__ import annotations

import asyncio
import ipaddress
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from simulator.stress.rest import Answer, ApiClient, ApiError, Driver

MIB = 1024**2
VM_MEMORY = 128 * MIB
IMAGE_SIZE = 64 * MIB


@dataclass(frozen=True, slots=True)
class Shape:
    """What the data center's VMs look like."""

    cpu_num: int = 1
    memory_size: int = VM_MEMORY
    image_size: int = IMAGE_SIZE


def host_ip(i: int) -> str:
    """Management IP label of host ``i``: 10.64.0.0/10 holds 4 million (.0 and .255
    skipped)."""
    return str(
        ipaddress.IPv4Address(int(ipaddress.IPv4Address("10.64.0.1")) + i // 254 * 256 + i % 254)
    )


def backup_storage_ip() -> str:
    return "10.63.255.254"  # outside the hosts' labels


def nfs_url(prefix: str) -> str:
    return f"nfs.{prefix}.example:/share"


def vm_cidr(vms: int) -> str:
    """An L3 range with room for ``vms`` addresses and some slack: at least a /16, from
    10.128.0.0 (a /9 holds 8 million)."""
    bits = max(16, math.ceil(math.log2(vms * 1.1 + 256)))
    return f"10.128.0.0/{32 - bits}"


async def set_global_config(client: ApiClient, category: str, name: str, value: object) -> None:
    path = f"/global-configurations/{category}/{name}/actions"
    answer = await client.job("PUT", path, {"updateGlobalConfig": {"value": str(value)}})
    if answer.status != 200:
        raise ApiError(f"UpdateGlobalConfig {category} {name}", answer)


async def global_config(client: ApiClient, category: str, name: str) -> str:
    path = f"/global-configurations?q=category={category}&q=name={name}"
    answer = await client.request("GET", path)
    found = answer.body.get("inventories") if isinstance(answer.body, dict) else None
    if answer.status != 200 or not found:
        raise ApiError(f"QueryGlobalConfig {category} {name}", answer)
    return str(found[0]["value"])


async def _create(driver: Driver, client: ApiClient, path: str, params: dict[str, Any]) -> Any:
    answer = await driver.job(client, "POST", path, {"params": params})
    if answer.status != 200:
        raise ApiError(f"POST {path}", answer)
    return answer.body.get("inventory") if isinstance(answer.body, dict) else None


async def build_base(
    driver: Driver, client: ApiClient, prefix: str, vms: int, shape: Shape = Shape()
) -> dict[str, Any]:
    """Everything but the hosts; inventories by role: zone, cluster, nfs, bs, image, l2, l3,
    ip_range, offering."""
    made: dict[str, Any] = {}

    async def create(role: str, path: str, params: dict[str, Any]) -> Any:
        made[role] = await _create(driver, client, path, params)
        return made[role]

    zone = await create("zone", "/zones", {"name": f"{prefix}-zone"})
    cluster = await create(
        "cluster",
        "/clusters",
        {"name": f"{prefix}-cluster", "zoneUuid": zone["uuid"], "hypervisorType": "KVM"},
    )
    z, c = zone["uuid"], cluster["uuid"]
    nfs = await create(
        "nfs",
        "/primary-storage/nfs",
        {"name": f"{prefix}-nfs", "url": nfs_url(prefix), "zoneUuid": z},
    )
    await _create(driver, client, f"/clusters/{c}/primary-storage/{nfs['uuid']}", {})
    bs = await create(
        "bs",
        "/backup-storage/sftp",
        {
            "name": f"{prefix}-bs",
            "url": "/bs",
            "hostname": backup_storage_ip(),
            "username": "root",
            "password": "pw",
        },
    )
    await _create(driver, client, f"/zones/{z}/backup-storage/{bs['uuid']}", {})
    await create(
        "image",
        "/images",
        {
            "name": f"{prefix}-image",
            "url": f"http://images.example/{prefix}.qcow2?size={shape.image_size}",
            "format": "qcow2",
            "mediaType": "RootVolumeTemplate",
            "platform": "Linux",
            "backupStorageUuids": [bs["uuid"]],
        },
    )
    l2 = await create(
        "l2",
        "/l2-networks/no-vlan",
        {"name": f"{prefix}-l2", "zoneUuid": z, "physicalInterface": "eth0"},
    )
    await _create(driver, client, f"/l2-networks/{l2['uuid']}/clusters/{c}", {})
    l3 = await create(
        "l3",
        "/l3-networks",
        {"name": f"{prefix}-l3", "l2NetworkUuid": l2["uuid"], "category": "Private"},
    )
    await create(
        "ip_range",
        f"/l3-networks/{l3['uuid']}/ip-ranges/by-cidr",
        {"name": f"{prefix}-range", "networkCidr": vm_cidr(vms)},
    )
    await create(
        "offering",
        "/instance-offerings",
        {"name": f"{prefix}-offering", "cpuNum": shape.cpu_num, "memorySize": shape.memory_size},
    )
    return made


def add_host_body(cluster_uuid: str, i: int, prefix: str) -> dict[str, Any]:
    return {
        "params": {
            "name": f"{prefix}-host-{i}",
            "managementIp": host_ip(i),
            "clusterUuid": cluster_uuid,
            "username": "root",
            "password": "password",
        }
    }


async def add_hosts(
    driver: Driver,
    cluster_uuid: str,
    indexes: range,
    *,
    prefix: str,
    parallel: int,
    done: Callable[[Answer, float], None] | None = None,
) -> list[Answer]:
    """AddKVMHost for each index, ``parallel`` at a time, each followed to its job's end;
    ``done(answer, seconds)`` after each. Answers in index order (failures included)."""
    gate = asyncio.Semaphore(parallel)
    loop = asyncio.get_running_loop()

    async def add(n: int, i: int) -> Answer:
        client = driver.clients[n % len(driver.clients)]
        async with gate:
            started = loop.time()
            answer = await driver.job(
                client, "POST", "/hosts/kvm", add_host_body(cluster_uuid, i, prefix)
            )
            if done is not None:
                done(answer, loop.time() - started)
            return answer

    return list(await asyncio.gather(*(add(n, i) for n, i in enumerate(indexes))))


def vm_body(dc: dict[str, Any], name: str) -> dict[str, Any]:
    return {
        "params": {
            "name": name,
            "imageUuid": dc["image"]["uuid"],
            "instanceOfferingUuid": dc["offering"]["uuid"],
            "l3NetworkUuids": [dc["l3"]["uuid"]],
        }
    }


async def create_vms(driver: Driver, dc: dict[str, Any], n: int) -> tuple[float, list[Answer]]:
    """N CreateVmInstance calls started at once, each followed to its end."""

    async def one(client: ApiClient, i: int) -> Answer:
        return await driver.job(client, "POST", "/vm-instances", vm_body(dc, f"vm-{n}-{i}"))

    return await driver.many(f"create {n}", n, one)


async def destroy_vms(driver: Driver, uuids: list[str]) -> float:
    async def one(client: ApiClient, i: int) -> Answer:
        return await driver.job(client, "DELETE", f"/vm-instances/{uuids[i]}")

    wall, answers = await driver.many(f"destroy {len(uuids)}", len(uuids), one)
    failed = [a.body for a in answers if a.status != 200]
    if failed:
        raise RuntimeError(f"{len(failed)} destroys failed; first: {failed[0]}")
    return wall
