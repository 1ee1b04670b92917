"""Userdata over REST on simulated hosts (flat provider): a VM created with a
``userdata::<base64>`` system tag has its userdata on exactly the host that runs it,
through create, stop, start, migrate, reboot, reconnect and destroy; a host refusing it fails the
start; a tag that is not base64 is refused."""

from __future__ import annotations

import base64
from typing import Any

from simulator import Simulator
from tests.e2e.test_vm_lifecycle import (
    create_vm,
    destroy_and_expunge,
    error_of,
    get_vm,
    inventories,
    new_vm,
    vm_action,
    vm_ok,
)
from tests.support.api_client import ApiClient
from tests.support.datacenter import add_full_datacenter
from tests.support.netsvc import attach_services, host_network

HOSTS = ["10.91.0.1", "10.91.0.2"]
FLAT = {"Flat": ["DHCP", "DNS", "Userdata"]}
CLOUD_CONFIG = b"#cloud-config\nruncmd:\n  - echo hello > /tmp/hello\n"
ENCODED = base64.b64encode(CLOUD_CONFIG).decode()


def held(sim: Simulator, ip: str) -> dict[str, dict[str, Any]]:
    """vm uuid -> the userdata entry the host at ``ip`` serves."""
    found: dict[str, dict[str, Any]] = host_network(sim, ip).get("userdata", {})
    return found


async def test_userdata_is_on_the_host_that_runs_the_vm(admin: ApiClient, sim: Simulator) -> None:
    dc = await add_full_datacenter(admin, "udata", HOSTS, storage=("nfs",))
    a, b = dc["hosts"]
    on = {a["uuid"]: HOSTS[0], b["uuid"]: HOSTS[1]}
    answer = await attach_services(admin, dc["l3"]["uuid"], FLAT)
    assert answer.status == 200, answer.body

    vm = await new_vm(
        admin,
        dc,
        "web1",
        hostUuid=a["uuid"],
        systemTags=[f"userdata::{ENCODED}", "hostname::web1"],
    )
    nic = vm["vmNics"][0]
    plain = await new_vm(admin, dc, "plain", hostUuid=a["uuid"])
    # The tag is recorded on the VM, as ZStack keeps it.
    tags = await inventories(admin, "/system-tags", f"resourceUuid={vm['uuid']}")
    assert f"userdata::{ENCODED}" in {t["tag"] for t in tags}

    # Created: its userdata is served on its host, for its default NIC's address.
    entry = held(sim, HOSTS[0])[vm["uuid"]]
    assert base64.b64decode(entry["userdataList"][0]) == CLOUD_CONFIG
    assert entry["vmIp"] == nic["ip"]
    assert entry["metadata"] == {"vmUuid": vm["uuid"], "vmHostname": "web1"}
    assert plain["uuid"] not in held(sim, HOSTS[0])  # no userdata: nothing sent
    assert held(sim, HOSTS[1]) == {}

    # Stopped: gone from the host; started elsewhere: there only (the tag read back).
    await vm_ok(admin, vm["uuid"], "stopVmInstance")
    assert held(sim, HOSTS[0]) == {}
    started = await vm_ok(admin, vm["uuid"], "startVmInstance", hostUuid=b["uuid"])
    assert on[started["hostUuid"]] == HOSTS[1]
    assert held(sim, HOSTS[0]) == {}
    assert held(sim, HOSTS[1])[vm["uuid"]]["userdataList"] == [ENCODED]
    assert held(sim, HOSTS[1])[vm["uuid"]]["metadata"]["vmHostname"] == "web1"

    # Migrated: it moves with the VM.
    moved = await vm_ok(admin, vm["uuid"], "migrateVm", hostUuid=a["uuid"])
    assert on[moved["hostUuid"]] == HOSTS[0]
    assert set(held(sim, HOSTS[0])) == {vm["uuid"]}
    assert held(sim, HOSTS[1]) == {}

    # Rebooted: the VM stays on its host, and so does its userdata.
    await vm_ok(admin, vm["uuid"], "rebootVmInstance")
    assert set(held(sim, HOSTS[0])) == {vm["uuid"]}

    # A host that lost it gets it back when it reconnects.
    sim.machine(HOSTS[0]).network = None
    answer = await admin.action(f"/hosts/{a['uuid']}/actions", "reconnectHost", {})
    assert answer.status == 200, answer.body
    assert set(held(sim, HOSTS[0])) == {vm["uuid"]}

    # A host refusing it fails the start: Stopped, nothing of the VM left there.
    await vm_ok(admin, vm["uuid"], "stopVmInstance")
    sim.set_fault(HOSTS[1], "/flatnetworkprovider/userdata/batchapply", fail="disk full", times=1)
    failed = await vm_action(admin, vm["uuid"], "startVmInstance", hostUuid=b["uuid"])
    assert failed.status != 200
    assert "disk full" in str(failed.body)
    assert (await get_vm(admin, vm["uuid"]) or {}).get("state") == "Stopped"
    assert held(sim, HOSTS[1]) == {}
    assert nic["mac"] not in host_network(sim, HOSTS[1])["dhcp"]

    # Destroyed while running: gone from the host.
    await vm_ok(admin, vm["uuid"], "startVmInstance", hostUuid=b["uuid"])
    assert set(held(sim, HOSTS[1])) == {vm["uuid"]}
    await destroy_and_expunge(admin, vm["uuid"])
    assert held(sim, HOSTS[1]) == {}
    await destroy_and_expunge(admin, plain["uuid"])


async def test_userdata_that_is_not_base64_is_refused(admin: ApiClient, sim: Simulator) -> None:
    dc = await add_full_datacenter(admin, "udbad", HOSTS[:1], storage=("nfs",))
    assert (await attach_services(admin, dc["l3"]["uuid"], FLAT)).status == 200
    refused = await create_vm(admin, dc, "bad", systemTags=["userdata::not base64!"])
    error_of(refused, "SYS.1007")
    assert await inventories(admin, "/vm-instances", "name=bad") == []
    assert held(sim, HOSTS[0]) == {}
