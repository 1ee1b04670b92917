"""VIPs and EIPs over REST on simulated hosts (flat provider): an EIP NATed on the host
that runs its VM, following it through stop, start and migrate; seed 001's join query;
attach and detach while running; a host refusing undoes the change; deleting the VIP, the
VM or the public network takes what depends on them; bad input changes nothing."""

from __future__ import annotations

from typing import Any

from simulator import Simulator
from tests.e2e.test_vm_lifecycle import (
    destroy_and_expunge,
    error_of,
    get_vm,
    inventories,
    new_vm,
    uuids,
    vm_action,
    vm_ok,
)
from tests.support.api_client import ApiClient
from tests.support.datacenter import add_full_datacenter, wait_for
from tests.support.netsvc import (
    attach_services,
    host_nat,
    host_network,
    host_rules,
    new_vip,
    public_l3,
)

HOSTS = ["10.80.0.1", "10.80.0.2"]
FLAT = {"Flat": ["DHCP", "DNS", "Eip"]}


async def _eip(admin: ApiClient, uuid: str) -> dict[str, Any]:
    [eip] = await inventories(admin, "/eips", f"uuid={uuid}")
    return eip


async def test_an_eip_follows_its_vm_and_the_seed_query_finds_its_zone(
    admin: ApiClient, sim: Simulator
) -> None:
    dc = await add_full_datacenter(admin, "eip", HOSTS, storage=("nfs",))
    a, b = dc["hosts"]
    answer = await attach_services(admin, dc["l3"]["uuid"], FLAT)
    assert answer.status == 200, answer.body
    assert sorted(s["networkServiceType"] for s in answer.body["inventory"]["networkServices"]) == [
        "DHCP",
        "DNS",
        "Eip",
    ]
    public = await public_l3(admin, dc, "eip-public")
    vip = await new_vip(admin, public["uuid"], "web-vip", requiredIp="16.16.16.16")
    assert vip["ip"] == "16.16.16.16"
    assert vip["l3NetworkUuid"] == public["uuid"]
    assert vip["gateway"] == "16.16.16.1"
    [used] = await inventories(admin, "/l3-networks/ip-address", "ip=16.16.16.16")
    assert used["usedFor"] == "Vip"

    vm = await new_vm(admin, dc, "web", hostUuid=a["uuid"])
    nic = vm["vmNics"][0]
    # The flat provider gave the host the VM's DHCP entry before it booted.
    dhcp = host_network(sim, HOSTS[0])["dhcp"]
    assert dhcp[nic["mac"]]["ip"] == nic["ip"]
    assert dhcp[nic["mac"]]["gateway"] == nic["gateway"]
    # Served from the network's DHCP server address: an address of the L3 held for it.
    server = dhcp[nic["mac"]]["dhcpServerIp"]
    assert server != nic["ip"]
    [held] = await inventories(
        admin, "/l3-networks/ip-address", f"ip={server}", f"l3NetworkUuid={dc['l3']['uuid']}"
    )
    assert held["usedFor"] == "DhcpServer"

    answer = await admin.request(
        "GET", f"/vm-instances/nics/{nic['uuid']}/attached-networkservices"
    )
    assert answer.body["networkServices"] == ["DHCP", "DNS", "Eip"]
    spare = await admin.inventory(
        "/eips",
        {"name": "spare", "vipUuid": (await new_vip(admin, public["uuid"], "spare"))["uuid"]},
    )
    answer = await admin.request("GET", f"/eips/{spare['uuid']}/vm-instances/candidate-nics")
    assert [n["uuid"] for n in answer.body["inventories"]] == [nic["uuid"]]

    eip = await admin.inventory(
        "/eips", {"name": "web-eip", "vipUuid": vip["uuid"], "vmNicUuid": nic["uuid"]}
    )
    answer = await admin.request("GET", f"/eips/{spare['uuid']}/vm-instances/candidate-nics")
    assert answer.body["inventories"] == []  # the NIC has an EIP now
    assert (await admin.delete(f"/eips/{spare['uuid']}")).status == 200
    assert eip["vipIp"] == "16.16.16.16"
    assert eip["guestIp"] == nic["ip"]
    assert eip["vmNicUuid"] == nic["uuid"]
    assert host_nat(sim, HOSTS[0]) == {"16.16.16.16": nic["ip"]}
    assert host_nat(sim, HOSTS[1]) == {}
    [taken] = await inventories(admin, "/vips", f"uuid={vip['uuid']}")
    assert taken["useFor"] == "Eip"

    # Seed 001's query, and the edges around it.
    zone = dc["zone"]["uuid"]
    assert await uuids(admin, "/zones", "vmInstance.vmNics.eip.vipIp=16.16.16.16") == {zone}
    assert await uuids(admin, "/zones", "vmInstance.vmNics.eip.vipIp=16.16.16.17") == set()
    assert await uuids(admin, "/vm-instances/nics", "eip.vip.ip=16.16.16.16") == {nic["uuid"]}
    assert await uuids(admin, "/eips", f"vmNic.vmInstance.uuid={vm['uuid']}") == {eip["uuid"]}
    assert await uuids(admin, "/vips", "eip.name=web-eip") == {vip["uuid"]}

    # The NAT follows the VM: off on stop, back on start, moved by a migration.
    await vm_ok(admin, vm["uuid"], "stopVmInstance")
    assert host_nat(sim, HOSTS[0]) == {}
    assert nic["mac"] not in host_network(sim, HOSTS[0])["dhcp"]
    await vm_ok(admin, vm["uuid"], "startVmInstance", hostUuid=a["uuid"])
    assert host_nat(sim, HOSTS[0]) == {"16.16.16.16": nic["ip"]}
    await vm_ok(admin, vm["uuid"], "migrateVm", hostUuid=b["uuid"])
    assert host_nat(sim, HOSTS[0]) == {}
    assert host_nat(sim, HOSTS[1]) == {"16.16.16.16": nic["ip"]}
    assert nic["mac"] in host_network(sim, HOSTS[1])["dhcp"]

    # A host that lost its state gets the DHCP entries and NAT of its VMs when it reconnects.
    sim.machine(HOSTS[1]).network = None
    answer = await admin.action(f"/hosts/{b['uuid']}/actions", "reconnectHost", {})
    assert answer.status == 200, answer.body
    assert host_nat(sim, HOSTS[1]) == {"16.16.16.16": nic["ip"]}
    assert nic["mac"] in host_network(sim, HOSTS[1])["dhcp"]

    # The network keeps its Eip service while an EIP is attached to one of its NICs.
    refused = error_of(
        await admin.delete(f"/l3-networks/{dc['l3']['uuid']}/network-services", service="Eip"),
        "NS.1004",
    )
    assert refused["details"]["eipUuids"] == [eip["uuid"]]

    # Detach and attach while it runs.
    answer = await admin.delete(f"/eips/{eip['uuid']}/vm-instances/nics")
    assert answer.status == 200, answer.body
    assert answer.body["inventory"].get("vmNicUuid") is None
    assert host_nat(sim, HOSTS[1]) == {}
    assert await uuids(admin, "/zones", "vmInstance.vmNics.eip.vipIp=16.16.16.16") == set()
    answer = await admin.create(f"/eips/{eip['uuid']}/vm-instances/nics/{nic['uuid']}", {})
    assert answer.status == 200, answer.body
    assert host_nat(sim, HOSTS[1]) == {"16.16.16.16": nic["ip"]}

    # Expunging the VM detaches the EIP (its NIC is gone); the EIP and VIP stay.
    await destroy_and_expunge(admin, vm["uuid"])
    assert host_nat(sim, HOSTS[1]) == {}
    detached = await _eip(admin, eip["uuid"])
    assert detached.get("vmNicUuid") is None

    # Deleting the VIP deletes its EIP and frees the address.
    assert (await admin.delete(f"/vips/{vip['uuid']}")).status == 200
    assert await inventories(admin, "/eips") == []
    assert await inventories(admin, "/l3-networks/ip-address", "ip=16.16.16.16") == []


async def test_a_host_refusing_the_nat_leaves_the_eip_as_it_was(
    admin: ApiClient, sim: Simulator
) -> None:
    dc = await add_full_datacenter(admin, "eipfail", HOSTS[:1], storage=("nfs",))
    assert (await attach_services(admin, dc["l3"]["uuid"], FLAT)).status == 200
    public = await public_l3(admin, dc, "eipfail-public")
    vip = await new_vip(admin, public["uuid"], "v1")
    vm = await new_vm(admin, dc, "app")
    nic = vm["vmNics"][0]
    eip = await admin.inventory("/eips", {"name": "e1", "vipUuid": vip["uuid"]})
    assert eip.get("vmNicUuid") is None

    sim.set_fault(HOSTS[0], "/flatnetworkprovider/eip/apply", fail="iptables: locked", times=1)
    answer = await admin.create(f"/eips/{eip['uuid']}/vm-instances/nics/{nic['uuid']}", {})
    assert answer.status != 200
    assert "iptables: locked" in str(answer.body)
    assert (await _eip(admin, eip["uuid"])).get("vmNicUuid") is None
    assert host_nat(sim, HOSTS[0]) == {}

    answer = await admin.create(f"/eips/{eip['uuid']}/vm-instances/nics/{nic['uuid']}", {})
    assert answer.status == 200, answer.body
    sim.set_fault(HOSTS[0], "/flatnetworkprovider/eip/delete", fail="iptables: locked", times=1)
    answer = await admin.delete(f"/eips/{eip['uuid']}/vm-instances/nics")
    assert answer.status != 200
    assert (await _eip(admin, eip["uuid"]))["vmNicUuid"] == nic["uuid"]
    assert host_nat(sim, HOSTS[0]) == {vip["ip"]: nic["ip"]}

    # A start whose EIP the host refuses does not happen, and leaves nothing there.
    await vm_ok(admin, vm["uuid"], "stopVmInstance")
    sim.set_fault(HOSTS[0], "/flatnetworkprovider/eip/batchapply", fail="no nat", times=1)
    failed = await admin.action(f"/vm-instances/{vm['uuid']}/actions", "startVmInstance", {})
    assert failed.status != 200
    [again] = await inventories(admin, "/vm-instances", f"uuid={vm['uuid']}")
    assert again["state"] == "Stopped"
    assert host_nat(sim, HOSTS[0]) == {}
    assert host_network(sim, HOSTS[0])["dhcp"] == {}
    await vm_ok(admin, vm["uuid"], "startVmInstance")
    assert host_nat(sim, HOSTS[0]) == {vip["ip"]: nic["ip"]}

    # Names change, nothing else.
    answer = await admin.action(f"/eips/{eip['uuid']}/actions", "updateEip", {"name": "e1b"})
    assert answer.body["inventory"]["name"] == "e1b"
    assert answer.body["inventory"]["vmNicUuid"] == nic["uuid"]
    answer = await admin.action(f"/vips/{vip['uuid']}/actions", "updateVip", {"name": "v1b"})
    assert answer.body["inventory"]["name"] == "v1b"
    assert answer.body["inventory"]["useFor"] == "Eip"

    # Deleting the EIP revokes it and frees the VIP for another use.
    assert (await admin.delete(f"/eips/{eip['uuid']}")).status == 200
    assert host_nat(sim, HOSTS[0]) == {}
    [free] = await inventories(admin, "/vips", f"uuid={vip['uuid']}")
    assert free.get("useFor") is None
    await destroy_and_expunge(admin, vm["uuid"])


async def test_a_disabled_eip_stays_attached_and_off_its_host(
    admin: ApiClient, sim: Simulator
) -> None:
    dc = await add_full_datacenter(admin, "eipstate", HOSTS[:1], storage=("nfs",))
    assert (await attach_services(admin, dc["l3"]["uuid"], FLAT)).status == 200
    public = await public_l3(admin, dc, "eipstate-public")
    vip = await new_vip(admin, public["uuid"], "v")
    vm = await new_vm(admin, dc, "app")
    nic = vm["vmNics"][0]
    eip = await admin.inventory(
        "/eips", {"name": "e", "vipUuid": vip["uuid"], "vmNicUuid": nic["uuid"]}
    )
    actions = f"/eips/{eip['uuid']}/actions"
    assert host_nat(sim, HOSTS[0]) == {vip["ip"]: nic["ip"]}
    error_of(await admin.action(actions, "changeEipState", {"stateEvent": "off"}), "SYS.1007")

    # A host refusing the revoke leaves the EIP Enabled and NATed.
    sim.set_fault(HOSTS[0], "/flatnetworkprovider/eip/delete", fail="iptables: locked", times=1)
    refused = await admin.action(actions, "changeEipState", {"stateEvent": "disable"})
    assert refused.status != 200
    assert (await _eip(admin, eip["uuid"]))["state"] == "Enabled"
    assert host_nat(sim, HOSTS[0]) == {vip["ip"]: nic["ip"]}

    answer = await admin.action(actions, "changeEipState", {"stateEvent": "disable"})
    assert answer.status == 200, answer.body
    assert answer.body["inventory"]["state"] == "Disabled"
    assert answer.body["inventory"]["vmNicUuid"] == nic["uuid"]
    assert host_nat(sim, HOSTS[0]) == {}
    # A restart of its VM does not put it back.
    await vm_ok(admin, vm["uuid"], "stopVmInstance")
    await vm_ok(admin, vm["uuid"], "startVmInstance")
    assert host_nat(sim, HOSTS[0]) == {}

    # A host refusing the apply leaves it Disabled; then it goes back on.
    sim.set_fault(HOSTS[0], "/flatnetworkprovider/eip/apply", fail="iptables: locked", times=1)
    refused = await admin.action(actions, "changeEipState", {"stateEvent": "enable"})
    assert refused.status != 200
    assert (await _eip(admin, eip["uuid"]))["state"] == "Disabled"
    assert host_nat(sim, HOSTS[0]) == {}
    answer = await admin.action(actions, "changeEipState", {"stateEvent": "enable"})
    assert answer.status == 200, answer.body
    assert answer.body["inventory"]["state"] == "Enabled"
    assert host_nat(sim, HOSTS[0]) == {vip["ip"]: nic["ip"]}

    # Disabled, it detaches and attaches without touching the host.
    assert (await admin.action(actions, "changeEipState", {"stateEvent": "disable"})).status == 200
    assert (await admin.delete(f"/eips/{eip['uuid']}/vm-instances/nics")).status == 200
    attached = await admin.create(f"/eips/{eip['uuid']}/vm-instances/nics/{nic['uuid']}", {})
    assert attached.status == 200, attached.body
    assert host_nat(sim, HOSTS[0]) == {}
    assert (await admin.delete(f"/eips/{eip['uuid']}")).status == 200
    await destroy_and_expunge(admin, vm["uuid"])


async def test_bad_input_changes_nothing_and_vips_go_with_their_network(
    admin: ApiClient, sim: Simulator
) -> None:
    dc = await add_full_datacenter(admin, "eipbad", HOSTS[:1], storage=("nfs",))
    public = await public_l3(admin, dc, "eipbad-public")
    vip = await new_vip(admin, public["uuid"], "v1", requiredIp="16.16.16.20")
    error_of(
        await admin.create(
            "/vips", {"name": "dup", "l3NetworkUuid": public["uuid"], "requiredIp": "16.16.16.20"}
        ),
        "L3.1003",
    )
    error_of(await admin.create("/vips", {"name": "x", "l3NetworkUuid": "a" * 32}), "SYS.1003")
    vm = await new_vm(admin, dc, "plain")
    nic = vm["vmNics"][0]
    # The guest L3 has no Eip service yet: refused, and nothing is created.
    error_of(
        await admin.create(
            "/eips", {"name": "e", "vipUuid": vip["uuid"], "vmNicUuid": nic["uuid"]}
        ),
        "NS.1005",
    )
    assert await inventories(admin, "/eips") == []
    [still] = await inventories(admin, "/vips", f"uuid={vip['uuid']}")
    assert still.get("useFor") is None
    assert (await attach_services(admin, dc["l3"]["uuid"], FLAT)).status == 200
    eip = await admin.inventory(
        "/eips", {"name": "e", "vipUuid": vip["uuid"], "vmNicUuid": nic["uuid"]}
    )
    error_of(await admin.create("/eips", {"name": "e2", "vipUuid": vip["uuid"]}), "VIP.1001")
    error_of(
        await admin.create(f"/eips/{eip['uuid']}/vm-instances/nics/{nic['uuid']}", {}), "EIP.1001"
    )
    error_of(await admin.create("/eips", {"name": "e3", "vipUuid": "b" * 32}), "SYS.1003")
    assert await uuids(admin, "/eips") == {eip["uuid"]}

    # Deleting the public network (Enforcing) deletes its VIP, then the VIP's EIP.
    answer = await admin.delete(f"/l3-networks/{public['uuid']}")
    error_of(answer, "L3.1002")  # Permissive: its address is in use by the VIP
    answer = await admin.delete(f"/l3-networks/{public['uuid']}", deleteMode="Enforcing")
    assert answer.status == 200, answer.body
    assert await inventories(admin, "/vips") == []
    assert await inventories(admin, "/eips") == []
    assert host_nat(sim, HOSTS[0]) == {}
    await destroy_and_expunge(admin, vm["uuid"])


async def test_deleting_a_guest_network_under_a_running_vm_takes_its_services_off(
    admin: ApiClient, sim: Simulator
) -> None:
    dc = await add_full_datacenter(admin, "eipl3", HOSTS[:1], storage=("nfs",))
    second = await admin.inventory(
        "/l3-networks", {"name": "second", "l2NetworkUuid": dc["l2"]["uuid"]}
    )
    await admin.inventory(
        f"/l3-networks/{second['uuid']}/ip-ranges/by-cidr",
        {"name": "second-range", "networkCidr": "192.168.20.0/24"},
    )
    for l3 in (dc["l3"]["uuid"], second["uuid"]):
        answer = await attach_services(admin, l3, {**FLAT, "SecurityGroup": ["SecurityGroup"]})
        assert answer.status == 200, answer.body
    public = await public_l3(admin, dc, "eipl3-public")
    vip = await new_vip(admin, public["uuid"], "v")
    vm = await new_vm(admin, dc, "two-nics", l3NetworkUuids=[dc["l3"]["uuid"], second["uuid"]])
    first_nic, nic = sorted(vm["vmNics"], key=lambda n: n["deviceId"])
    assert nic["l3NetworkUuid"] == second["uuid"]
    eip = await admin.inventory(
        "/eips", {"name": "e", "vipUuid": vip["uuid"], "vmNicUuid": nic["uuid"]}
    )
    sg = await admin.inventory("/security-groups", {"name": "g"})
    for l3 in (dc["l3"]["uuid"], second["uuid"]):
        answer = await admin.create(f"/security-groups/{sg['uuid']}/l3-networks/{l3}", {})
        assert answer.status == 200, answer.body
    answer = await admin.create(
        f"/security-groups/{sg['uuid']}/rules",
        {"rules": [{"type": "Ingress", "protocol": "ICMP"}]},
    )
    assert answer.status == 200, answer.body
    answer = await admin.create(
        f"/security-groups/{sg['uuid']}/vm-instances/nics",
        {"vmNicUuids": [first_nic["uuid"], nic["uuid"]]},
    )
    assert answer.status == 200, answer.body
    assert set(host_rules(sim, HOSTS[0])) == {first_nic["uuid"], nic["uuid"]}
    assert host_nat(sim, HOSTS[0]) == {vip["ip"]: nic["ip"]}
    dhcp = host_network(sim, HOSTS[0])["dhcp"]
    assert {first_nic["mac"], nic["mac"]} <= set(dhcp)
    # Each L3 network has one DHCP server address, whatever the number of its VMs.
    servers = {
        dhcp[n["mac"]]["l3NetworkUuid"]: dhcp[n["mac"]]["dhcpServerIp"] for n in (first_nic, nic)
    }
    assert len(set(servers.values()) - {None}) == 2

    answer = await admin.delete(f"/l3-networks/{second['uuid']}", deleteMode="Enforcing")
    assert answer.status == 200, answer.body
    # The VM runs on with its other NIC; the deleted one's services left the host.
    [left] = await inventories(admin, "/vm-instances", f"uuid={vm['uuid']}")
    assert left["state"] == "Running"
    assert [n["uuid"] for n in left["vmNics"]] == [first_nic["uuid"]]
    assert set(host_rules(sim, HOSTS[0])) == {first_nic["uuid"]}
    assert host_nat(sim, HOSTS[0]) == {}
    assert nic["mac"] not in host_network(sim, HOSTS[0])["dhcp"]
    assert (await _eip(admin, eip["uuid"])).get("vmNicUuid") is None
    [group] = await inventories(admin, "/security-groups", f"uuid={sg['uuid']}")
    assert group["attachedL3NetworkUuids"] == [dc["l3"]["uuid"]]
    refs = await inventories(admin, "/security-groups/vm-instances/nics")
    assert [r["vmNicUuid"] for r in refs] == [first_nic["uuid"]]
    await destroy_and_expunge(admin, vm["uuid"])


async def test_services_follow_what_the_host_reports(admin: ApiClient, sim: Simulator) -> None:
    dc = await add_full_datacenter(admin, "eipsync", HOSTS[:1], storage=("nfs",))
    assert (await attach_services(admin, dc["l3"]["uuid"], FLAT)).status == 200
    public = await public_l3(admin, dc, "eipsync-public")
    vip = await new_vip(admin, public["uuid"], "v")
    vm = await new_vm(admin, dc, "guest")
    nic = vm["vmNics"][0]
    await admin.inventory("/eips", {"name": "e", "vipUuid": vip["uuid"], "vmNicUuid": nic["uuid"]})
    host = dc["hosts"][0]
    assert host_nat(sim, HOSTS[0]) == {vip["ip"]: nic["ip"]}

    # The guest powered itself off: the NAT and DHCP entry leave the host with it.
    gone = sim.machine(HOSTS[0]).remove_vm(vm["uuid"])
    assert gone is not None
    body = {"hostUuid": host["uuid"], "vmUuid": vm["uuid"], "vmState": "Shutdown"}
    await sim.report(HOSTS[0], "/kvm/reportvmstate", body)

    async def held(nat: dict[str, str], dhcp: bool) -> bool:
        # The provider sends the tables one after the other: wait for both.
        in_dhcp = nic["mac"] in host_network(sim, HOSTS[0])["dhcp"]
        return host_nat(sim, HOSTS[0]) == nat and in_dhcp is dhcp

    await wait_for(lambda: held({}, dhcp=False))

    # Started behind the node's back: the host reports it running, its services come back.
    sim.machine(HOSTS[0]).add_vm(vm["uuid"], gone)
    await sim.report(HOSTS[0], "/kvm/reportvmstate", {**body, "vmState": "Running"})
    await wait_for(lambda: held({vip["ip"]: nic["ip"]}, dhcp=True))
    await destroy_and_expunge(admin, vm["uuid"])


async def test_eips_of_a_disconnected_host_are_settled_when_it_reconnects(
    admin: ApiClient, sim: Simulator
) -> None:
    dc = await add_full_datacenter(admin, "eipdown", HOSTS[:1], storage=("nfs",))
    assert (await attach_services(admin, dc["l3"]["uuid"], FLAT)).status == 200
    public = await public_l3(admin, dc, "eipdown-public")
    vips = [await new_vip(admin, public["uuid"], f"v{i}") for i in range(2)]
    vm = await new_vm(admin, dc, "down")
    nic = vm["vmNics"][0]
    first = await admin.inventory(
        "/eips", {"name": "e0", "vipUuid": vips[0]["uuid"], "vmNicUuid": nic["uuid"]}
    )
    assert host_nat(sim, HOSTS[0]) == {vips[0]["ip"]: nic["ip"]}
    host_path = f"/hosts/{dc['hosts'][0]['uuid']}/actions"

    # While the host is down, a detach and an attach are accepted...
    await sim.set_alive(HOSTS[0], False)
    assert (await admin.action(host_path, "reconnectHost", {})).status != 200
    answer = await admin.delete(f"/eips/{first['uuid']}/vm-instances/nics")
    assert answer.status == 200, answer.body
    second = await admin.inventory(
        "/eips", {"name": "e1", "vipUuid": vips[1]["uuid"], "vmNicUuid": nic["uuid"]}
    )
    assert second["vmNicUuid"] == nic["uuid"]
    assert host_nat(sim, HOSTS[0]) == {vips[0]["ip"]: nic["ip"]}  # it heard nothing

    # ...and its reconnect gives it the NAT table the database holds.
    await sim.set_alive(HOSTS[0], True)
    assert (await admin.action(host_path, "reconnectHost", {})).status == 200
    assert host_nat(sim, HOSTS[0]) == {vips[1]["ip"]: nic["ip"]}
    await destroy_and_expunge(admin, vm["uuid"])


async def test_the_eips_a_nic_could_take(admin: ApiClient, sim: Simulator) -> None:
    dc = await add_full_datacenter(admin, "eipcand", HOSTS[:1], storage=("nfs",))
    guest = dc["l3"]["uuid"]
    public = await public_l3(admin, dc, "eipcand-public")
    vm = await new_vm(admin, dc, "app")
    nic = vm["vmNics"][0]
    first, second = [
        await admin.inventory(
            "/eips",
            {"name": f"e{i}", "vipUuid": (await new_vip(admin, public["uuid"], f"v{i}"))["uuid"]},
        )
        for i in range(2)
    ]
    # An EIP on a VIP of the NIC's own network is no candidate.
    await admin.inventory(
        "/eips", {"name": "own", "vipUuid": (await new_vip(admin, guest, "own"))["uuid"]}
    )
    path = f"/vm-instances/nics/{nic['uuid']}/candidate-eips"

    async def candidates(**params: str) -> list[str]:
        answer = await admin.request("GET", path, params=params or None)
        assert answer.status == 200, answer.body
        return [e["uuid"] for e in answer.body["inventories"]]

    # Bad input answers a structured error.
    error_of(
        await admin.request("GET", f"/vm-instances/nics/{'0' * 32}/candidate-eips"), "SYS.1003"
    )
    error_of(await admin.request("GET", path, params={"ipVersion": "5"}), "SYS.1007")
    error_of(await admin.request("GET", path, params={"start": "-1"}), "SYS.1007")
    assert await candidates() == []  # the NIC's network has no Eip service yet
    assert (await attach_services(admin, guest, FLAT)).status == 200
    # Oldest first (the same second: by uuid), a page of them as asked.
    found = await candidates()
    assert sorted(found) == sorted([first["uuid"], second["uuid"]])
    assert await candidates(ipVersion="4") == found
    assert await candidates(ipVersion="6") == []
    assert await candidates(limit="1") == found[:1]
    assert await candidates(start="1", limit="5") == found[1:]

    # Given one, the NIC takes no other; another NIC may take the one left.
    answer = await admin.create(f"/eips/{first['uuid']}/vm-instances/nics/{nic['uuid']}", {})
    assert answer.status == 200, answer.body
    assert await candidates() == []
    other = await new_vm(admin, dc, "other")
    answer = await admin.request(
        "GET", f"/vm-instances/nics/{other['vmNics'][0]['uuid']}/candidate-eips"
    )
    assert [e["uuid"] for e in answer.body["inventories"]] == [second["uuid"]]
    # A destroyed VM's NIC takes none.
    assert (await admin.delete(f"/vm-instances/{other['uuid']}")).status == 200
    answer = await admin.request(
        "GET", f"/vm-instances/nics/{other['vmNics'][0]['uuid']}/candidate-eips"
    )
    assert answer.status == 200, answer.body
    assert answer.body["inventories"] == []
    if await get_vm(admin, other["uuid"]) is not None:
        assert (await vm_action(admin, other["uuid"], "expungeVmInstance")).status == 200
    await destroy_and_expunge(admin, vm["uuid"])


async def test_a_stopped_vm_expunged_gives_up_its_eip_and_rules_for_another(
    admin: ApiClient, sim: Simulator
) -> None:
    dc = await add_full_datacenter(admin, "eipgone", HOSTS[:1], storage=("nfs",))
    flat = {"Flat": ["DHCP", "Eip", "PortForwarding"]}
    assert (await attach_services(admin, dc["l3"]["uuid"], flat)).status == 200
    public = await public_l3(admin, dc, "eipgone-public")
    eip_vip = await new_vip(admin, public["uuid"], "eip-vip")
    pf_vip = await new_vip(admin, public["uuid"], "pf-vip")
    old = await new_vm(admin, dc, "old")
    nic = old["vmNics"][0]
    eip = await admin.inventory(
        "/eips", {"name": "e", "vipUuid": eip_vip["uuid"], "vmNicUuid": nic["uuid"]}
    )
    rule = await admin.inventory(
        "/port-forwarding",
        {
            "name": "ssh",
            "vipUuid": pf_vip["uuid"],
            "vipPortStart": 2222,
            "privatePortStart": 22,
            "protocolType": "TCP",
            "vmNicUuid": nic["uuid"],
        },
    )
    assert host_nat(sim, HOSTS[0]) == {eip_vip["ip"]: nic["ip"]}

    # Stopped (off the host), destroyed, expunged: the EIP and the rule stay, detached.
    await vm_ok(admin, old["uuid"], "stopVmInstance")
    assert host_nat(sim, HOSTS[0]) == {}
    await destroy_and_expunge(admin, old["uuid"])
    assert (await _eip(admin, eip["uuid"])).get("vmNicUuid") is None
    [kept] = await inventories(admin, "/port-forwarding", f"uuid={rule['uuid']}")
    assert kept.get("vmNicUuid") is None
    assert host_nat(sim, HOSTS[0]) == {}
    assert host_network(sim, HOSTS[0])["portForwarding"] == {}

    # Another VM takes both: NATed on its host, to its address only.
    new = await new_vm(admin, dc, "new")
    other = new["vmNics"][0]
    answer = await admin.create(f"/eips/{eip['uuid']}/vm-instances/nics/{other['uuid']}", {})
    assert answer.status == 200, answer.body
    answer = await admin.create(
        f"/port-forwarding/{rule['uuid']}/vm-instances/nics/{other['uuid']}", {}
    )
    assert answer.status == 200, answer.body
    assert host_nat(sim, HOSTS[0]) == {eip_vip["ip"]: other["ip"]}
    [forward] = host_network(sim, HOSTS[0])["portForwarding"].values()
    assert forward["nicIp"] == other["ip"]
    await destroy_and_expunge(admin, new["uuid"])
