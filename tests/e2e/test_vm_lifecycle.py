"""A VM through its whole life over REST, on simulated hosts: create (Running on the
simulated machine), stop, start, reboot, pause, resume, migrate, destroy, recover, start,
destroy, expunge; afterwards host capacity, primary storage capacity and the L3's
addresses are exactly where they started. Also: queries with joins, CreateStopped, the
deletion policies and the expunge task, updates, and what the state machine refuses.

The helpers at the top are shared by the other test_vm_* modules."""

from __future__ import annotations

from typing import Any

from simulator import Simulator
from tests.support.api_client import Answer, ApiClient
from tests.support.datacenter import GIB, add_full_datacenter, set_global_config, wait_for

HOST_IPS = ["10.60.0.1", "10.60.0.2"]


# ----- helpers (also used by test_vm_create_rollback and test_vm_concurrency) -------------


async def create_vm(admin: ApiClient, dc: dict[str, Any], name: str, **params: Any) -> Answer:
    """``POST /vm-instances`` with the data center's image, offering and L3 (``params``
    add or override body fields; ``systemTags`` goes beside them)."""
    tags = params.pop("systemTags", None)
    body = {
        "name": name,
        "imageUuid": dc["image"]["uuid"],
        "instanceOfferingUuid": dc["offering"]["uuid"],
        "l3NetworkUuids": [dc["l3"]["uuid"]],
        **params,
    }
    top = {"systemTags": tags} if tags else {}
    return await admin.create("/vm-instances", body, **top)


async def new_vm(admin: ApiClient, dc: dict[str, Any], name: str, **params: Any) -> dict[str, Any]:
    answer = await create_vm(admin, dc, name, **params)
    assert answer.status == 200, answer.body
    inventory: dict[str, Any] = answer.body["inventory"]
    return inventory


async def vm_action(admin: ApiClient, uuid: str, action: str, **params: Any) -> Answer:
    """``PUT /vm-instances/{uuid}/actions`` with ``{action: params}``."""
    return await admin.action(f"/vm-instances/{uuid}/actions", action, params)


async def vm_ok(admin: ApiClient, uuid: str, action: str, **params: Any) -> dict[str, Any]:
    answer = await vm_action(admin, uuid, action, **params)
    assert answer.status == 200, answer.body
    inventory: dict[str, Any] = answer.body["inventory"]
    return inventory


async def get_vm(admin: ApiClient, uuid: str) -> dict[str, Any] | None:
    answer = await admin.request("GET", f"/vm-instances/{uuid}")
    assert answer.status == 200, answer.body
    found: list[dict[str, Any]] = answer.body["inventories"]
    return found[0] if found else None


async def inventories(admin: ApiClient, path: str, *conditions: str) -> list[dict[str, Any]]:
    answer = await admin.query(path, *conditions)
    assert answer.status == 200, answer.body
    found: list[dict[str, Any]] = answer.body["inventories"]
    return found


async def uuids(admin: ApiClient, path: str, *conditions: str) -> set[str]:
    return {item["uuid"] for item in await inventories(admin, path, *conditions)}


async def books(admin: ApiClient) -> dict[str, Any]:
    """What VMs take and give back: hosts' free CPU and memory, primary storage's free
    bytes, the addresses in use, the volumes, the VMs and NICs."""
    hosts = await inventories(admin, "/hosts")
    storage = await inventories(admin, "/primary-storage")
    return {
        "hosts": {
            h["uuid"]: (h["availableCpuCapacity"], h["availableMemoryCapacity"]) for h in hosts
        },
        "storage": {p["uuid"]: p["availableCapacity"] for p in storage},
        "ips": sorted(i["ip"] for i in await inventories(admin, "/l3-networks/ip-address")),
        "volumes": await uuids(admin, "/volumes"),
        "vms": await uuids(admin, "/vm-instances"),
        "nics": await uuids(admin, "/vm-instances/nics"),
    }


async def destroy_and_expunge(admin: ApiClient, uuid: str) -> None:
    assert (await admin.delete(f"/vm-instances/{uuid}")).status == 200
    if await get_vm(admin, uuid) is not None:  # Delay policy: still Destroyed
        answer = await vm_action(admin, uuid, "expungeVmInstance")
        assert answer.status == 200, answer.body


async def warm_image_cache(admin: ApiClient, dc: dict[str, Any]) -> None:
    """Put the image into every host's (or the shared storage's) image cache, so that the
    creates a test measures do not grow it: a cache entry stays, with the capacity it
    takes, after its VMs are gone (as in ZStack)."""
    for host in dc["hosts"]:
        vm = await new_vm(
            admin, dc, f"warm-{host['name']}", hostUuid=host["uuid"], strategy="CreateStopped"
        )
        await destroy_and_expunge(admin, vm["uuid"])


def machine_vms(sim: Simulator, ip: str) -> dict[str, str]:
    """The VMs a simulated host runs: uuid -> agent state."""
    return {uuid: vm.state for uuid, vm in (sim.machine(ip).vms or {}).items()}


def machine_volumes(sim: Simulator, ip: str, vm_uuid: str) -> list[str]:
    """The data volumes a simulated host has attached to a VM it runs."""
    vm = sim.machine(ip).vm(vm_uuid)
    assert vm is not None, f"{ip} does not run {vm_uuid}"
    return list(vm.volumes or [])


def error_of(answer: Answer, code: str) -> dict[str, Any]:
    assert answer.status != 200, answer.body
    error = answer.error
    assert error["code"] == code, error
    return error


# ----- tests ------------------------------------------------------------------------------


async def test_a_vm_through_its_whole_life(admin: ApiClient, sim: Simulator) -> None:
    dc = await add_full_datacenter(admin, "life", HOST_IPS, storage=("nfs",))
    await warm_image_cache(admin, dc)
    ip_of = {h["uuid"]: h["managementIp"] for h in dc["hosts"]}
    before = await books(admin)

    vm = await new_vm(admin, dc, "web", systemTags=["hostname::web1"])
    uuid = vm["uuid"]
    assert vm["state"] == "Running"
    assert vm["cpuNum"] == 2
    assert vm["memorySize"] == 2 * GIB
    assert vm["type"] == "UserVm"
    assert vm["hypervisorType"] == "KVM"
    assert vm["hostUuid"] == vm["lastHostUuid"]
    assert vm["clusterUuid"] == dc["cluster"]["uuid"]
    assert vm["defaultL3NetworkUuid"] == dc["l3"]["uuid"]
    host = vm["hostUuid"]
    assert machine_vms(sim, ip_of[host]) == {uuid: "Running"}
    [nic] = vm["vmNics"]
    assert nic["mac"].startswith("fa:")
    assert nic["deviceId"] == 0
    assert nic["internalName"].startswith("vnic")
    assert nic["internalName"].endswith(".0")
    assert nic["ip"].startswith("192.168.10.")
    assert nic["usedIps"][0]["ip"] == nic["ip"]
    [root] = vm["allVolumes"]
    assert root["uuid"] == vm["rootVolumeUuid"]
    assert root["type"] == "Root"
    assert root["primaryStorageUuid"] == dc["nfs"]["uuid"]
    assert await uuids(admin, "/system-tags", f"resourceUuid={uuid}", "tag=hostname::web1")

    # Joins, both ways.
    assert await uuids(admin, "/vm-instances", f"vmNics.ip={nic['ip']}") == {uuid}
    assert await uuids(admin, "/vm-instances", f"host.managementIp={ip_of[host]}") == {uuid}
    assert await uuids(admin, "/vm-instances", "zone.name=life-zone") == {uuid}
    assert await uuids(admin, "/zones", f"vmInstance.vmNics.l3NetworkUuid={dc['l3']['uuid']}") == {
        dc["zone"]["uuid"]
    }
    assert await uuids(admin, "/hosts", f"vmInstance.uuid={uuid}") == {host}
    assert await uuids(admin, "/l3-networks", "vmNic.vmInstance.name=web") == {dc["l3"]["uuid"]}
    assert await uuids(admin, "/vm-instances/nics", f"vmInstance.uuid={uuid}") == {nic["uuid"]}
    assert await uuids(admin, "/instance-offerings", "vmInstance.name=web") == {
        dc["offering"]["uuid"]
    }
    assert await uuids(
        admin, "/vm-instances", f"allVolumes.primaryStorageUuid={dc['nfs']['uuid']}"
    ) == {uuid}

    # Host capacity follows the VM.
    hosts = (await books(admin))["hosts"]
    cpu, memory = before["hosts"][host]
    assert hosts[host] == (cpu - 2, memory - 2 * GIB)

    vm = await vm_ok(admin, uuid, "stopVmInstance", type="grace")
    assert vm["state"] == "Stopped"
    assert vm.get("hostUuid") is None
    assert vm["lastHostUuid"] == host
    assert machine_vms(sim, ip_of[host]) == {}
    assert (await books(admin))["hosts"][host] == (cpu, memory)

    vm = await vm_ok(admin, uuid, "startVmInstance")
    assert vm["state"] == "Running"
    assert vm["hostUuid"] == host
    assert machine_vms(sim, ip_of[host]) == {uuid: "Running"}

    vm = await vm_ok(admin, uuid, "rebootVmInstance")
    assert vm["state"] == "Running"
    vm = await vm_ok(admin, uuid, "pauseVmInstance")
    assert vm["state"] == "Paused"
    assert machine_vms(sim, ip_of[host]) == {uuid: "Paused"}
    vm = await vm_ok(admin, uuid, "resumeVmInstance")
    assert vm["state"] == "Running"
    assert machine_vms(sim, ip_of[host]) == {uuid: "Running"}

    candidates = await admin.request("GET", f"/vm-instances/{uuid}/migration-target-hosts")
    assert candidates.status == 200, candidates.body
    other = next(h for h in ip_of if h != host)
    assert [h["uuid"] for h in candidates.body["inventories"]] == [other]
    vm = await vm_ok(admin, uuid, "migrateVm")
    assert vm["state"] == "Running"
    assert vm["hostUuid"] == other
    assert vm["lastHostUuid"] == host
    assert machine_vms(sim, ip_of[host]) == {}
    assert machine_vms(sim, ip_of[other]) == {uuid: "Running"}
    hosts = (await books(admin))["hosts"]
    assert hosts[host] == before["hosts"][host]
    assert hosts[other] == (before["hosts"][other][0] - 2, before["hosts"][other][1] - 2 * GIB)

    destroyed = await admin.delete(f"/vm-instances/{uuid}")
    assert destroyed.status == 200, destroyed.body
    row = await get_vm(admin, uuid)
    assert row is not None
    assert row["state"] == "Destroyed"
    assert row.get("hostUuid") is None
    assert machine_vms(sim, ip_of[other]) == {}
    assert (await books(admin))["hosts"] == before["hosts"]
    assert nic["ip"] in (await books(admin))["ips"]  # kept for a recover

    vm = await vm_ok(admin, uuid, "recoverVmInstance")
    assert vm["state"] == "Stopped"
    assert vm["vmNics"][0]["ip"] == nic["ip"]
    vm = await vm_ok(admin, uuid, "startVmInstance")
    assert vm["state"] == "Running"
    assert (await admin.delete(f"/vm-instances/{uuid}")).status == 200
    expunged = await vm_action(admin, uuid, "expungeVmInstance")
    assert expunged.status == 200, expunged.body
    assert await get_vm(admin, uuid) is None
    for machine_ip in HOST_IPS:
        assert machine_vms(sim, machine_ip) == {}
    assert await books(admin) == before


async def test_create_stopped_keeps_the_host_for_local_storage(
    admin: ApiClient, sim: Simulator
) -> None:
    dc = await add_full_datacenter(admin, "stopped", HOST_IPS, storage=("local",))
    await warm_image_cache(admin, dc)
    before = await books(admin)
    vm = await new_vm(admin, dc, "cold", strategy="CreateStopped")
    assert vm["state"] == "Stopped"
    assert vm.get("hostUuid") is None
    host = vm["lastHostUuid"]
    assert host in {h["uuid"] for h in dc["hosts"]}
    assert [v["type"] for v in vm["allVolumes"]] == ["Root"]
    assert (await books(admin))["hosts"] == before["hosts"]  # capacity given back
    for machine_ip in HOST_IPS:
        assert machine_vms(sim, machine_ip) == {}
    # Local storage pins the VM to the host whose disk holds its root volume.
    other = next(h["uuid"] for h in dc["hosts"] if h["uuid"] != host)
    error_of(await vm_action(admin, vm["uuid"], "startVmInstance", hostUuid=other), "VM.1002")
    vm = await vm_ok(admin, vm["uuid"], "startVmInstance")
    assert vm["hostUuid"] == host
    # ... and a VM on local storage does not live-migrate.
    refused = error_of(await vm_action(admin, vm["uuid"], "migrateVm"), "VM.1004")
    assert "local storage" in refused["description"]


async def test_illegal_transitions_name_the_state(admin: ApiClient) -> None:
    dc = await add_full_datacenter(admin, "states", HOST_IPS[:1], storage=("nfs",))
    vm = await new_vm(admin, dc, "s", strategy="CreateStopped")
    uuid = vm["uuid"]
    for action in ("stopVmInstance", "rebootVmInstance", "pauseVmInstance", "resumeVmInstance"):
        error = error_of(await vm_action(admin, uuid, action), "VM.1001")
        assert error["details"]["state"] == "Stopped"
        assert "Stopped" in error["description"]
    assert (await vm_action(admin, uuid, "recoverVmInstance")).status == 409
    await vm_ok(admin, uuid, "startVmInstance")
    error = error_of(await vm_action(admin, uuid, "startVmInstance"), "VM.1001")
    assert error["details"]["state"] == "Running"
    error = error_of(await vm_action(admin, uuid, "expungeVmInstance"), "VM.1001")
    assert error["details"]["state"] == "Running"
    error = error_of(await vm_action(admin, uuid, "updateVmInstance", cpuNum=4), "VM.1001")
    assert error["details"]["state"] == "Running"
    assert (await get_vm(admin, uuid) or {})["state"] == "Running"


async def test_update_and_change_offering_while_stopped(admin: ApiClient) -> None:
    dc = await add_full_datacenter(admin, "upd", HOST_IPS[:1], storage=("nfs",))
    vm = await new_vm(admin, dc, "u")
    uuid = vm["uuid"]
    vm = await vm_ok(admin, uuid, "updateVmInstance", name="renamed", description="d")
    assert (vm["name"], vm["description"]) == ("renamed", "d")
    big = await admin.inventory(
        "/instance-offerings", {"name": "big", "cpuNum": 4, "memorySize": 4 * GIB}
    )
    error_of(
        await vm_action(admin, uuid, "changeInstanceOffering", instanceOfferingUuid=big["uuid"]),
        "VM.1001",
    )
    await vm_ok(admin, uuid, "stopVmInstance", type="cold")
    vm = await vm_ok(admin, uuid, "changeInstanceOffering", instanceOfferingUuid=big["uuid"])
    assert (vm["cpuNum"], vm["memorySize"]) == (4, 4 * GIB)
    assert vm["instanceOfferingUuid"] == big["uuid"]
    vm = await vm_ok(admin, uuid, "updateVmInstance", cpuNum=3, memorySize=3 * GIB)
    assert (vm["cpuNum"], vm["memorySize"]) == (3, 3 * GIB)
    vm = await vm_ok(admin, uuid, "startVmInstance")
    host = next(h for h in await inventories(admin, "/hosts") if h["uuid"] == vm["hostUuid"])
    assert host["availableCpuCapacity"] == host["totalCpuCapacity"] - 3


async def test_deletion_policies_and_the_expunge_task(admin: ApiClient) -> None:
    dc = await add_full_datacenter(admin, "del", HOST_IPS[:1], storage=("nfs",))
    await warm_image_cache(admin, dc)
    before = await books(admin)

    await set_global_config(admin, "vm", "deletionPolicy", "Direct")
    vm = await new_vm(admin, dc, "direct")
    assert (await admin.delete(f"/vm-instances/{vm['uuid']}")).status == 200
    assert await get_vm(admin, vm["uuid"]) is None
    assert await books(admin) == before

    await set_global_config(admin, "vm", "deletionPolicy", "Delay")
    await set_global_config(admin, "vm", "expungePeriod", 1)
    await set_global_config(admin, "vm", "expungeInterval", 1)
    vm = await new_vm(admin, dc, "delayed")
    assert (await admin.delete(f"/vm-instances/{vm['uuid']}")).status == 200

    async def expunged() -> bool:
        return await get_vm(admin, vm["uuid"]) is None

    await wait_for(expunged, timeout=6.0)
    assert await books(admin) == before


async def test_data_volumes_attach_detach_and_outlive_their_vm(
    admin: ApiClient, sim: Simulator
) -> None:
    dc = await add_full_datacenter(admin, "vols", HOST_IPS[:1], storage=("nfs",))
    ip = HOST_IPS[0]
    vm = await new_vm(admin, dc, "disks", dataDiskOfferingUuids=[dc["disk_offering"]["uuid"]])
    uuid = vm["uuid"]
    first = next(v for v in vm["allVolumes"] if v["type"] == "Data")
    assert first["deviceId"] == 1
    assert machine_volumes(sim, ip, uuid) == [first["uuid"]]

    made = await admin.inventory("/volumes/data", {"name": "extra", "diskSize": GIB})
    attached = await admin.finish(
        await admin.request(
            "POST", f"/volumes/{made['uuid']}/vm-instances/{uuid}", json={"params": {}}
        )
    )
    assert attached.status == 200, attached.body
    assert attached.body["inventory"]["deviceId"] == 2
    assert machine_volumes(sim, ip, uuid) == [first["uuid"], made["uuid"]]
    detached = await admin.delete(f"/volumes/{made['uuid']}/vm-instances", vmUuid=uuid)
    assert detached.status == 200, detached.body
    assert machine_volumes(sim, ip, uuid) == [first["uuid"]]

    # Stopped: an attach waits for the next start, which boots with it.
    await vm_ok(admin, uuid, "stopVmInstance")
    again = await admin.finish(
        await admin.request(
            "POST", f"/volumes/{made['uuid']}/vm-instances/{uuid}", json={"params": {}}
        )
    )
    assert again.status == 200, again.body
    await vm_ok(admin, uuid, "startVmInstance")
    assert sorted(machine_volumes(sim, ip, uuid)) == sorted([first["uuid"], made["uuid"]])

    await destroy_and_expunge(admin, uuid)
    left = {v["uuid"]: v for v in await inventories(admin, "/volumes", "type=Data")}
    assert set(left) == {first["uuid"], made["uuid"]}
    for volume in left.values():
        assert volume["status"] == "Ready"
        assert volume.get("vmInstanceUuid") is None
