"""The flat provider's DHCP server address over REST on simulated hosts: one address of
each L3 network, held for it (``usedFor`` DhcpServer), given to the host with every DHCP
entry of the network, even when its first VMs start at once; it does not keep the
network from being deleted."""

from __future__ import annotations

import asyncio

from simulator import Simulator
from tests.e2e.test_vm_lifecycle import destroy_and_expunge, inventories, new_vm, vm_ok
from tests.support.api_client import ApiClient
from tests.support.datacenter import add_full_datacenter
from tests.support.netsvc import attach_services, host_network

HOSTS = ["10.81.0.1"]


async def test_one_dhcp_server_address_per_network_even_for_vms_started_at_once(
    admin: ApiClient, sim: Simulator
) -> None:
    dc = await add_full_datacenter(admin, "dhcpsrv", HOSTS, storage=("nfs",))
    l3 = dc["l3"]["uuid"]
    answer = await attach_services(admin, l3, {"Flat": ["DHCP", "DNS"]})
    assert answer.status == 200, answer.body
    vms = await asyncio.gather(*(new_vm(admin, dc, f"web{i}") for i in range(3)))
    nics = [vm["vmNics"][0] for vm in vms]

    [held] = await inventories(
        admin, "/l3-networks/ip-address", "usedFor=DhcpServer", f"l3NetworkUuid={l3}"
    )
    assert held["ip"] not in {n["ip"] for n in nics}
    dhcp = host_network(sim, HOSTS[0])["dhcp"]
    assert {dhcp[n["mac"]]["dhcpServerIp"] for n in nics} == {held["ip"]}
    assert {dhcp[n["mac"]]["l3NetworkUuid"] for n in nics} == {l3}

    for vm in vms:
        await destroy_and_expunge(admin, vm["uuid"])
    assert host_network(sim, HOSTS[0])["dhcp"] == {}
    # The address goes with its network: a Permissive delete is not refused for it.
    answer = await admin.delete(f"/l3-networks/{l3}")
    assert answer.status == 200, answer.body
    assert await inventories(admin, "/l3-networks/ip-address", f"l3NetworkUuid={l3}") == []


async def test_detaching_dhcp_takes_the_network_off_every_host_at_once(
    admin: ApiClient, sim: Simulator
) -> None:
    hosts = ["10.81.1.1", "10.81.1.2"]
    dc = await add_full_datacenter(
        admin, "dhcpoff", hosts, storage=("nfs",), cidr="192.168.31.0/24"
    )
    l3 = dc["l3"]["uuid"]
    answer = await attach_services(admin, l3, {"Flat": ["DHCP", "DNS", "Userdata"]})
    assert answer.status == 200, answer.body
    vms = [await new_vm(admin, dc, f"run{i}") for i in range(4)]
    held = {ip: host_network(sim, ip)["dhcp"] for ip in hosts}
    assert sum(len(entries) for entries in held.values()) == len(vms)

    answer = await admin.delete(f"/l3-networks/{l3}/network-services", service="DHCP")
    assert answer.status == 200, answer.body
    # The VMs run on, but no host serves their network any more.
    for ip in hosts:
        assert host_network(sim, ip).get("dhcp", {}) == {}
    vm = vms[0]
    await vm_ok(admin, vm["uuid"], "stopVmInstance")
    await vm_ok(admin, vm["uuid"], "startVmInstance")
    for ip in hosts:
        assert host_network(sim, ip).get("dhcp", {}) == {}
