"""What deleting other resources does to VMs, as ZStack does it: a deleted host's VMs are
stopped (and can start elsewhere), an L3 network's NICs are detached, a zone's VMs are
expunged with it, an image or an instance offering leaves its VMs alone."""

from __future__ import annotations

import asyncio

from simulator import Simulator
from tests.e2e.test_vm_lifecycle import (
    get_vm,
    inventories,
    machine_vms,
    new_vm,
    uuids,
    vm_action,
    vm_ok,
)
from tests.support.api_client import ApiClient
from tests.support.datacenter import add_full_datacenter

HOST_IPS = ["10.65.0.1", "10.65.0.2"]


async def test_deleting_a_host_stops_its_vms(admin: ApiClient, sim: Simulator) -> None:
    dc = await add_full_datacenter(admin, "hdel", HOST_IPS, storage=("nfs",))
    gone, stays = dc["hosts"]
    vm = await new_vm(admin, dc, "v", hostUuid=gone["uuid"])
    deleted = await admin.delete(f"/hosts/{gone['uuid']}")
    assert deleted.status == 200, deleted.body
    row = await get_vm(admin, vm["uuid"])
    assert row is not None
    assert row["state"] == "Stopped"
    assert row.get("hostUuid") is None
    assert row.get("lastHostUuid") is None  # the host is forgotten
    assert machine_vms(sim, gone["managementIp"]) == {}
    row = await vm_ok(admin, vm["uuid"], "startVmInstance")
    assert row["hostUuid"] == stays["uuid"]


async def test_deleting_an_l3_network_detaches_its_nics(admin: ApiClient, sim: Simulator) -> None:
    dc = await add_full_datacenter(admin, "l3del", HOST_IPS[:1], storage=("nfs",))
    other = await admin.inventory(
        "/l3-networks", {"name": "other", "l2NetworkUuid": dc["l2"]["uuid"], "category": "Private"}
    )
    await admin.inventory(
        f"/l3-networks/{other['uuid']}/ip-ranges/by-cidr",
        {"name": "r2", "networkCidr": "192.168.20.0/24"},
    )
    vm = await new_vm(admin, dc, "two-nics", l3NetworkUuids=[dc["l3"]["uuid"], other["uuid"]])
    assert len(vm["vmNics"]) == 2
    plugged = sim.machine(HOST_IPS[0]).vm(vm["uuid"])
    assert plugged is not None
    assert plugged.nics == [n["uuid"] for n in sorted(vm["vmNics"], key=lambda n: n["deviceId"])]
    refused = await admin.delete(f"/l3-networks/{other['uuid']}")
    assert refused.status != 200  # Permissive: its addresses are in use
    deleted = await admin.delete(f"/l3-networks/{other['uuid']}", deleteMode="Enforcing")
    assert deleted.status == 200, deleted.body
    row = await get_vm(admin, vm["uuid"])
    assert row is not None
    assert row["state"] == "Running"
    assert [n["l3NetworkUuid"] for n in row["vmNics"]] == [dc["l3"]["uuid"]]
    # The running guest lost the device too, not only the database its row.
    assert plugged.nics == [row["vmNics"][0]["uuid"]]


async def test_images_and_offerings_leave_their_vms_alone(admin: ApiClient) -> None:
    dc = await add_full_datacenter(admin, "keep", HOST_IPS[:1], storage=("nfs",))
    vm = await new_vm(admin, dc, "kept")
    await admin.delete(f"/instance-offerings/{dc['offering']['uuid']}")
    await admin.delete(f"/images/{dc['image']['uuid']}")
    row = await get_vm(admin, vm["uuid"])
    assert row is not None
    assert row["state"] == "Running"
    assert row.get("instanceOfferingUuid") is None
    row = await vm_ok(admin, vm["uuid"], "rebootVmInstance")
    assert row["state"] == "Running"


async def test_deleting_a_zone_expunges_its_vms(admin: ApiClient, sim: Simulator) -> None:
    dc = await add_full_datacenter(admin, "zdel", HOST_IPS, storage=("nfs",))
    await new_vm(admin, dc, "a")
    stopped = await new_vm(admin, dc, "b", strategy="CreateStopped")
    await vm_ok(admin, stopped["uuid"], "updateVmInstance", description="stopped")
    # Permissive: the zone's own VMs go with it, so their addresses do not hold the L3 back.
    deleted = await admin.delete(f"/zones/{dc['zone']['uuid']}")
    assert deleted.status == 200, deleted.body
    assert await uuids(admin, "/vm-instances") == set()
    assert await uuids(admin, "/vm-instances/nics") == set()
    assert await inventories(admin, "/volumes", "type=Root") == []
    for ip in HOST_IPS:
        assert machine_vms(sim, ip) == {}


async def test_deleting_a_host_while_its_vm_stops_does_not_wait_for_ever(
    admin: ApiClient, sim: Simulator
) -> None:
    # The stop holds the VM's queue and gives the host's capacity back at its end; the
    # delete holds the host's queue and waits in the VM's queue to stop the VM there.
    dc = await add_full_datacenter(admin, "hstop", HOST_IPS[:1], storage=("nfs",))
    (host,) = dc["hosts"]
    vm = await new_vm(admin, dc, "v")
    sim.set_fault(host["managementIp"], "/vm/stop", delay=1.0, times=1)
    stopping = asyncio.create_task(vm_action(admin, vm["uuid"], "stopVmInstance"))
    await asyncio.sleep(0.3)  # the stop is with the agent now
    deleted = await asyncio.wait_for(admin.delete(f"/hosts/{host['uuid']}"), timeout=30)
    assert deleted.status == 200, deleted.body
    stopped = await asyncio.wait_for(stopping, timeout=30)
    assert stopped.status == 200, stopped.body
    row = await get_vm(admin, vm["uuid"])
    assert row is not None
    assert (row["state"], row.get("hostUuid")) == ("Stopped", None)
    assert (await admin.query("/hosts", f"uuid={host['uuid']}")).body["inventories"] == []
