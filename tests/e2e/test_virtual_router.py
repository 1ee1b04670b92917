"""The virtual-router provider over REST (simulated hosts and appliance): the router is
made with the first VM of its guest network through the VM flows, serves DHCP, DNS, SNAT,
EIPs and port forwarding from its appliance agent, and is brought back with all of it
when its appliance dies; bad input changes nothing."""

from __future__ import annotations

from simulator import Simulator
from tests.e2e.test_vm_lifecycle import error_of, inventories, new_vm, vm_ok
from tests.support.api_client import ApiClient
from tests.support.datacenter import add_full_datacenter, set_global_config, wait_for
from tests.support.netsvc import (
    APPLIANCE_PORT,
    appliance,
    attach_services,
    new_vip,
    public_l3,
    router_ip,
    routers,
)

HOSTS = ["10.86.0.1", "10.86.0.2"]
VR_SERVICES = {"VirtualRouter": ["DHCP", "DNS", "SNAT", "Eip", "PortForwarding"]}
MIB = 1024**2


async def test_router_serves_its_network_and_comes_back_after_it_dies(
    admin: ApiClient, sim: Simulator
) -> None:
    dc = await add_full_datacenter(admin, "vr", HOSTS, storage=("nfs",))
    guest = dc["l3"]["uuid"]
    public = await public_l3(admin, dc, "vr-public")

    # No offering in the zone: the provider refuses, nothing is attached.
    error_of(await attach_services(admin, guest, VR_SERVICES), "VR.1001")
    [l3] = await inventories(admin, "/l3-networks", f"uuid={guest}")
    assert l3["networkServices"] == []
    # An offering whose image does not exist: refused, nothing made.
    bad = {
        "name": "vr-offering",
        "zoneUuid": dc["zone"]["uuid"],
        "managementNetworkUuid": public["uuid"],
        "imageUuid": "0" * 32,
        "cpuNum": 1,
        "memorySize": 512 * MIB,
        "isDefault": True,
    }
    error_of(await admin.create("/instance-offerings/virtual-routers", bad), "SYS.1003")
    assert await inventories(admin, "/instance-offerings/virtual-routers") == []

    offering = await admin.inventory(
        "/instance-offerings/virtual-routers", {**bad, "imageUuid": dc["image"]["uuid"]}
    )
    assert offering["type"] == "VirtualRouter"
    assert offering["publicNetworkUuid"] == public["uuid"]
    # The offering's own network cannot take services from a router.
    error_of(await attach_services(admin, public["uuid"], VR_SERVICES), "VR.1002")
    assert (await attach_services(admin, guest, VR_SERVICES)).status == 200
    assert await routers(admin) == []  # made with the network's first VM

    vm = await new_vm(admin, dc, "web")
    nic = vm["vmNics"][0]
    [router] = await routers(admin)
    assert (router["status"], router["state"]) == ("Connected", "Running")
    assert router["applianceVmType"] == "VirtualRouter"
    assert sorted(n["l3NetworkUuid"] for n in router["vmNics"]) == sorted([guest, public["uuid"]])
    assert [a["uuid"] for a in await inventories(admin, "/vm-instances/appliances")] == [
        router["uuid"]
    ]
    # Queryable by its own fields and by its VM's.
    for condition in ("status=Connected", f"name=virtualRouter.l3.{guest}", "state=Running"):
        assert [r["uuid"] for r in await routers(admin, condition)] == [router["uuid"]]
    assert await routers(admin, "status=Disconnected") == []
    [found] = await inventories(
        admin, "/instance-offerings/virtual-routers", "name=vr-offering", "isDefault=true"
    )
    assert found["uuid"] == offering["uuid"]
    ip = router_ip(router, public["uuid"])
    held = appliance(sim, ip)
    assert list(held["dhcp"]) == [nic["mac"]]
    assert held["dhcp"][nic["mac"]]["ip"] == nic["ip"]
    [snat] = held["snat"].values()
    assert snat["publicIp"] == ip
    assert snat["privateNicIp"] == nic["gateway"]

    # A second VM on the network uses the same router.
    db = await new_vm(admin, dc, "db")
    assert len(await routers(admin)) == 1
    assert sorted(appliance(sim, ip)["dhcp"]) == sorted([nic["mac"], db["vmNics"][0]["mac"]])

    # EIPs and port forwarding are the router's.
    eip_vip = await new_vip(admin, public["uuid"], "vr-eip", requiredIp="16.16.16.40")
    await admin.inventory(
        "/eips", {"name": "web", "vipUuid": eip_vip["uuid"], "vmNicUuid": nic["uuid"]}
    )
    pf_vip = await new_vip(admin, public["uuid"], "vr-pf", requiredIp="16.16.16.41")
    await admin.inventory(
        "/port-forwarding",
        {
            "name": "ssh",
            "vipUuid": pf_vip["uuid"],
            "vipPortStart": 2222,
            "privatePortStart": 22,
            "protocolType": "TCP",
            "vmNicUuid": db["vmNics"][0]["uuid"],
        },
    )
    # The router's own NICs are no candidates, nor take EIPs.
    spare = await admin.inventory(
        "/port-forwarding",
        {"name": "spare", "vipUuid": pf_vip["uuid"], "vipPortStart": 8080, "protocolType": "TCP"},
    )
    answer = await admin.request(
        "GET", f"/port-forwarding/{spare['uuid']}/vm-instances/candidate-nics"
    )
    assert sorted(n["uuid"] for n in answer.body["inventories"]) == sorted(
        [nic["uuid"], db["vmNics"][0]["uuid"]]
    )
    router_guest = next(n for n in router["vmNics"] if n["l3NetworkUuid"] == guest)
    answer = await admin.request("GET", f"/vm-instances/nics/{router_guest['uuid']}/candidate-eips")
    assert answer.status == 200, answer.body
    assert answer.body["inventories"] == []
    assert (await admin.delete(f"/port-forwarding/{spare['uuid']}")).status == 200
    held = appliance(sim, ip)
    assert held["eips"]["16.16.16.40"]["guestIp"] == nic["ip"]
    assert held["portForwarding"]["16.16.16.41:TCP:2222-2222"]["privateIp"] == db["vmNics"][0]["ip"]
    assert all(sim.machine(h).network is None for h in HOSTS)  # nothing of it on hosts

    # A VM that migrates keeps its entries: the router is on no host.
    other = next(h["uuid"] for h in dc["hosts"] if h["uuid"] != db["hostUuid"])
    moved = await vm_ok(admin, db["uuid"], "migrateVm", hostUuid=other)
    assert moved["hostUuid"] == other
    assert appliance(sim, ip) == held

    # A VM that stops takes its entries off the router; they come back with it.
    await vm_ok(admin, db["uuid"], "stopVmInstance")
    held = appliance(sim, ip)
    assert list(held["dhcp"]) == [nic["mac"]]
    assert held["portForwarding"] == {}
    await vm_ok(admin, db["uuid"], "startVmInstance")
    assert "16.16.16.41:TCP:2222-2222" in appliance(sim, ip)["portForwarding"]

    # The appliance dies: the node sees it, starts its VM again and sends it everything.
    await set_global_config(admin, "virtualRouter", "ping.interval", 1)
    before = appliance(sim, ip)
    await sim.set_alive(ip, False, port=APPLIANCE_PORT)

    async def back() -> bool:
        [now] = await routers(admin)
        machine = sim.find(ip, APPLIANCE_PORT)
        return (
            bool(now["status"] == "Connected" and machine is not None and machine.alive)
            and appliance(sim, ip).get("eips") == before["eips"]
        )

    await wait_for(back, timeout=30.0)
    after = appliance(sim, ip)
    for table in ("dhcp", "snat", "eips", "portForwarding"):
        assert after[table] == before[table], table
    [again] = await routers(admin)
    assert again["uuid"] == router["uuid"]

    # Its VM crashes on its host (the agent goes with it): the same again.
    host_ip = next(h["managementIp"] for h in dc["hosts"] if h["uuid"] == again["hostUuid"])
    assert sim.machine(host_ip).remove_vm(router["uuid"]) is not None
    sim.vm_gone(router["uuid"])
    assert not sim.machine(ip, APPLIANCE_PORT).alive
    await wait_for(back, timeout=30.0)
    assert appliance(sim, ip)["dhcp"] == before["dhcp"]
    [again] = await routers(admin)
    assert again["state"] == "Running"
    assert any(router["uuid"] in (sim.machine(h).vms or {}) for h in HOSTS)

    # Down when a VM starts, before the monitor noticed: the start brings it back itself.
    await set_global_config(admin, "virtualRouter", "ping.interval", 3600)
    await vm_ok(admin, db["uuid"], "stopVmInstance")
    await sim.set_alive(ip, False, port=APPLIANCE_PORT)
    await vm_ok(admin, db["uuid"], "startVmInstance")
    assert appliance(sim, ip)["dhcp"] == before["dhcp"]
    assert appliance(sim, ip)["portForwarding"] == before["portForwarding"]
    [again] = await routers(admin)
    assert again["status"] == "Connected"
    await set_global_config(admin, "virtualRouter", "ping.interval", 1)

    # The appliance refuses a VM's entries: the VM is not created, the router unchanged.
    before = appliance(sim, ip)
    sim.set_fault(ip, "/adddhcp", port=APPLIANCE_PORT, fail="dnsmasq is down", times=1)
    answer = await admin.create(
        "/vm-instances",
        {
            "name": "refused",
            "instanceOfferingUuid": dc["offering"]["uuid"],
            "imageUuid": dc["image"]["uuid"],
            "l3NetworkUuids": [guest],
        },
    )
    assert "dnsmasq is down" in str(error_of(answer, "AGENT.1003"))
    assert await inventories(admin, "/vm-instances", "name=refused") == []
    assert appliance(sim, ip)["dhcp"] == before["dhcp"]

    # Its VM destroyed: the node makes a new router and sends it everything.
    assert (await admin.delete(f"/vm-instances/{router['uuid']}")).status == 200

    async def replaced() -> bool:
        found = await routers(admin)
        return (
            len(found) == 1
            and found[0]["uuid"] != router["uuid"]
            and found[0]["status"] == "Connected"
        )

    await wait_for(replaced, timeout=30.0)
    [new] = await routers(admin)
    held = appliance(sim, router_ip(new, public["uuid"]))
    for table in ("dhcp", "portForwarding"):
        assert held[table] == before[table], table
    # The same EIPs, NATed by the new router's public NIC.
    assert {v: e["guestIp"] for v, e in held["eips"].items()} == {
        v: e["guestIp"] for v, e in before["eips"].items()
    }
    assert [a["uuid"] for a in await inventories(admin, "/vm-instances", "type=ApplianceVm")] == [
        new["uuid"]
    ]
