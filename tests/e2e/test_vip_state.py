"""ChangeVipState over REST (simulated hosts and appliance): the services on a disabled VIP
(an EIP, port-forwarding rules, a load balancer) stay in the database, attached, and
leave the hosts' and routers' tables, all of them or none; a refusal leaves the VIP as it
was; what reconnects, restarts or changes meanwhile does not put them back; enabled, they
return; bad input changes nothing."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from simulator import Simulator
from tests.e2e.test_load_balancers import held_backends
from tests.e2e.test_vm_lifecycle import destroy_and_expunge, error_of, inventories, new_vm, vm_ok
from tests.support.api_client import Answer, ApiClient
from tests.support.datacenter import add_full_datacenter
from tests.support.netsvc import (
    APPLIANCE_PORT,
    VR_SERVICES,
    appliance,
    attach_services,
    host_forwards,
    host_nat,
    new_vip,
    public_l3,
    router_ip,
    router_offering,
    routers,
)

HOSTS = ["10.88.0.1"]
FLAT = {"Flat": ["DHCP", "Eip", "PortForwarding"]}
PF_REVOKE = "/flatnetworkprovider/portforwarding/delete"


async def _vip(admin: ApiClient, uuid: str) -> dict[str, Any]:
    [vip] = await inventories(admin, "/vips", f"uuid={uuid}")
    return vip


async def _vip_state(admin: ApiClient, uuid: str, event: str) -> Answer:
    return await admin.action(f"/vips/{uuid}/actions", "changeVipState", {"stateEvent": event})


async def _rule(admin: ApiClient, name: str, vip: dict[str, Any], port: int, nic: str) -> Any:
    return await admin.inventory(
        "/port-forwarding",
        {
            "name": name,
            "vipUuid": vip["uuid"],
            "vipPortStart": port,
            "privatePortStart": port + 8000,
            "protocolType": "TCP",
            "vmNicUuid": nic,
        },
    )


async def test_services_of_a_disabled_vip_leave_the_host(admin: ApiClient, sim: Simulator) -> None:
    dc = await add_full_datacenter(admin, "vipstate", HOSTS, storage=("nfs",))
    host = dc["hosts"][0]
    assert (await attach_services(admin, dc["l3"]["uuid"], FLAT)).status == 200
    public = await public_l3(admin, dc, "vipstate-public")
    vm = await new_vm(admin, dc, "app")
    nic = vm["vmNics"][0]
    eip_vip = await new_vip(admin, public["uuid"], "eip", requiredIp="16.16.16.60")
    pf_vip = await new_vip(admin, public["uuid"], "pf", requiredIp="16.16.16.61")
    eip = await admin.inventory(
        "/eips", {"name": "e", "vipUuid": eip_vip["uuid"], "vmNicUuid": nic["uuid"]}
    )
    web = await _rule(admin, "web", pf_vip, 80, nic["uuid"])
    await _rule(admin, "ssh", pf_vip, 22, nic["uuid"])
    nat = {"16.16.16.60": nic["ip"]}
    forwards = {
        "16.16.16.61:TCP:80-80": (nic["ip"], 8080, 8080),
        "16.16.16.61:TCP:22-22": (nic["ip"], 8022, 8022),
    }
    assert host_nat(sim, HOSTS[0]) == nat
    assert host_forwards(sim, HOSTS[0]) == forwards

    # Bad input: refused, nothing changed.
    error_of(await _vip_state(admin, eip_vip["uuid"], "off"), "SYS.1007")
    error_of(
        await admin.action(f"/vips/{eip_vip['uuid']}/actions", "changeVipState", {}), "SYS.1007"
    )
    error_of(await _vip_state(admin, "0" * 32, "disable"), "SYS.1003")
    assert (await _vip(admin, eip_vip["uuid"]))["state"] == "Enabled"
    assert host_nat(sim, HOSTS[0]) == nat

    # The host refusing the EIP's revoke leaves the VIP Enabled, its EIP NATed.
    sim.set_fault(HOSTS[0], "/flatnetworkprovider/eip/delete", fail="iptables: locked", times=1)
    refused = await _vip_state(admin, eip_vip["uuid"], "disable")
    assert "iptables: locked" in str(refused.body)
    assert refused.status != 200
    assert (await _vip(admin, eip_vip["uuid"]))["state"] == "Enabled"
    assert host_nat(sim, HOSTS[0]) == nat

    answer = await _vip_state(admin, eip_vip["uuid"], "disable")
    assert answer.status == 200, answer.body
    assert answer.body["inventory"]["state"] == "Disabled"
    assert answer.body["inventory"]["useFor"] == "Eip"
    assert host_nat(sim, HOSTS[0]) == {}
    [kept] = await inventories(admin, "/eips", f"uuid={eip['uuid']}")
    assert (kept["state"], kept["vmNicUuid"]) == ("Enabled", nic["uuid"])
    assert (await _vip_state(admin, eip_vip["uuid"], "disable")).status == 200  # no change

    # One of two rules refused: neither leaves the host, the VIP stays Enabled.
    sim.set_fault(HOSTS[0], PF_REVOKE, fail="iptables: locked", times=1)
    refused = await _vip_state(admin, pf_vip["uuid"], "disable")
    assert refused.status != 200
    assert (await _vip(admin, pf_vip["uuid"]))["state"] == "Enabled"
    assert host_forwards(sim, HOSTS[0]) == forwards
    assert (await _vip_state(admin, pf_vip["uuid"], "disable")).status == 200
    assert host_forwards(sim, HOSTS[0]) == {}
    rules = await inventories(admin, "/port-forwarding")
    assert {(r["state"], r["vmNicUuid"]) for r in rules} == {("Enabled", nic["uuid"])}

    # A disabled VIP takes no new service; nothing is made, its use unchanged.
    error_of(await admin.create("/eips", {"name": "e2", "vipUuid": pf_vip["uuid"]}), "VIP.1002")
    params = {"name": "x", "vipUuid": pf_vip["uuid"], "vipPortStart": 53, "protocolType": "UDP"}
    error_of(await admin.create("/port-forwarding", params), "VIP.1002")
    assert len(await inventories(admin, "/port-forwarding")) == 2
    assert len((await _vip(admin, pf_vip["uuid"]))["servicesRefs"]) == 2

    # What happens meanwhile puts nothing back: a restart, a rule's state and NIC
    # changing, the host's reconnect (its tables rebuilt from the database).
    await vm_ok(admin, vm["uuid"], "stopVmInstance")
    await vm_ok(admin, vm["uuid"], "startVmInstance")
    web_actions = f"/port-forwarding/{web['uuid']}/actions"
    change = "changePortForwardingRuleState"
    assert (await admin.action(web_actions, change, {"stateEvent": "disable"})).status == 200
    assert (await admin.action(web_actions, change, {"stateEvent": "enable"})).status == 200
    assert (await admin.delete(f"/port-forwarding/{web['uuid']}/vm-instances/nics")).status == 200
    answer = await admin.create(
        f"/port-forwarding/{web['uuid']}/vm-instances/nics/{nic['uuid']}", {}
    )
    assert answer.status == 200, answer.body
    assert (await admin.action(web_actions, change, {"stateEvent": "disable"})).status == 200
    answer = await admin.action(f"/hosts/{host['uuid']}/actions", "reconnectHost", {})
    assert answer.status == 200, answer.body
    assert host_nat(sim, HOSTS[0]) == {}
    assert host_forwards(sim, HOSTS[0]) == {}

    # Enabling: the host refusing leaves the VIP Disabled, nothing on; then all return
    # but the rule disabled meanwhile.
    sim.set_fault(HOSTS[0], "/flatnetworkprovider/eip/apply", fail="iptables: locked", times=1)
    refused = await _vip_state(admin, eip_vip["uuid"], "enable")
    assert refused.status != 200
    assert (await _vip(admin, eip_vip["uuid"]))["state"] == "Disabled"
    assert host_nat(sim, HOSTS[0]) == {}
    assert (await _vip_state(admin, eip_vip["uuid"], "enable")).status == 200
    assert (await _vip_state(admin, pf_vip["uuid"], "enable")).status == 200
    assert host_nat(sim, HOSTS[0]) == nat
    assert host_forwards(sim, HOSTS[0]) == {"16.16.16.61:TCP:22-22": (nic["ip"], 8022, 8022)}

    # Disabled again, the VIP is deleted with its services (nothing left to revoke).
    assert (await _vip_state(admin, pf_vip["uuid"], "disable")).status == 200
    assert (await admin.delete(f"/vips/{pf_vip['uuid']}")).status == 200
    assert await inventories(admin, "/port-forwarding") == []
    assert host_forwards(sim, HOSTS[0]) == {}
    await destroy_and_expunge(admin, vm["uuid"])


async def test_deleting_a_rule_while_its_vip_is_disabled_waits_for_neither(
    admin: ApiClient, sim: Simulator
) -> None:
    dc = await add_full_datacenter(admin, "vipstate2", HOSTS, storage=("nfs",))
    assert (await attach_services(admin, dc["l3"]["uuid"], FLAT)).status == 200
    public = await public_l3(admin, dc, "vipstate2-public")
    vm = await new_vm(admin, dc, "app")
    vip = await new_vip(admin, public["uuid"], "pf")
    rule = await _rule(admin, "web", vip, 80, vm["vmNics"][0]["uuid"])

    # The rule's revoke is slow: the VIP's disable comes while the delete holds the
    # rule's queue, and waits for it while holding the VIP's; the delete gives the VIP
    # back only after leaving the rule's queue, so neither waits for a timeout.
    sim.set_fault(HOSTS[0], PF_REVOKE, delay=1.0, times=1)
    began = time.monotonic()
    deleting = asyncio.create_task(admin.delete(f"/port-forwarding/{rule['uuid']}"))
    await asyncio.sleep(0.3)
    disabled = await _vip_state(admin, vip["uuid"], "disable")
    assert disabled.status == 200, disabled.body
    assert (await deleting).status == 200
    assert time.monotonic() - began < 10
    left = await _vip(admin, vip["uuid"])
    assert (left["state"], left.get("useFor"), left["servicesRefs"]) == ("Disabled", None, [])
    assert await inventories(admin, "/port-forwarding") == []
    assert host_forwards(sim, HOSTS[0]) == {}
    await destroy_and_expunge(admin, vm["uuid"])


async def test_a_disabled_vip_leaves_the_router(admin: ApiClient, sim: Simulator) -> None:
    dc = await add_full_datacenter(admin, "vipvr", ["10.88.1.1"], storage=("nfs",))
    guest = dc["l3"]["uuid"]
    public = await public_l3(admin, dc, "vipvr-public")
    await router_offering(admin, dc, public)
    assert (await attach_services(admin, guest, VR_SERVICES)).status == 200
    web = await new_vm(admin, dc, "web")
    nic = web["vmNics"][0]
    [router] = await routers(admin)
    ip = router_ip(router, public["uuid"])

    lb_vip = await new_vip(admin, public["uuid"], "lb", requiredIp="16.16.16.70")
    lb = await admin.inventory("/load-balancers", {"name": "web", "vipUuid": lb_vip["uuid"]})
    listener = await admin.inventory(
        f"/load-balancers/{lb['uuid']}/listeners", {"name": "http", "loadBalancerPort": 80}
    )
    nics_path = f"/load-balancers/listeners/{listener['uuid']}/vm-instances/nics"
    assert (await admin.create(nics_path, {"vmNicUuids": [nic["uuid"]]})).status == 200
    pf_vip = await new_vip(admin, public["uuid"], "pf", requiredIp="16.16.16.71")
    await _rule(admin, "ssh", pf_vip, 22, nic["uuid"])
    assert held_backends(sim, ip, lb["uuid"]) == {80: [nic["ip"]]}
    assert list(appliance(sim, ip)["portForwarding"]) == ["16.16.16.71:TCP:22-22"]

    # The appliance refusing to drop the load balancer leaves the VIP Enabled.
    sim.set_fault(ip, "/deletelb", port=APPLIANCE_PORT, fail="haproxy reload failed", times=1)
    refused = await _vip_state(admin, lb_vip["uuid"], "disable")
    assert "haproxy reload failed" in str(refused.error)
    assert (await _vip(admin, lb_vip["uuid"]))["state"] == "Enabled"
    assert held_backends(sim, ip, lb["uuid"]) == {80: [nic["ip"]]}

    assert (await _vip_state(admin, lb_vip["uuid"], "disable")).status == 200
    assert (await _vip_state(admin, pf_vip["uuid"], "disable")).status == 200
    assert appliance(sim, ip)["loadBalancers"] == {}
    assert appliance(sim, ip)["portForwarding"] == {}
    # Changes of the load balancer meanwhile reach the database only; the router's
    # reconnect (every table sent again) does not bring anything back.
    db = await new_vm(admin, dc, "db")
    answer = await admin.create(nics_path, {"vmNicUuids": [db["vmNics"][0]["uuid"]]})
    assert answer.status == 200, answer.body
    assert len(answer.body["inventory"]["vmNicRefs"]) == 2
    answer = await admin.action(
        f"/vm-instances/appliances/virtual-routers/{router['uuid']}/actions",
        "reconnectVirtualRouter",
        {},
    )
    assert answer.status == 200, answer.body
    assert appliance(sim, ip)["loadBalancers"] == {}
    assert appliance(sim, ip)["portForwarding"] == {}

    # Enabled: the load balancer as it is now, and the rule, are back on the router.
    assert (await _vip_state(admin, lb_vip["uuid"], "enable")).status == 200
    assert (await _vip_state(admin, pf_vip["uuid"], "enable")).status == 200
    assert held_backends(sim, ip, lb["uuid"]) == {80: sorted([nic["ip"], db["vmNics"][0]["ip"]])}
    assert list(appliance(sim, ip)["portForwarding"]) == ["16.16.16.71:TCP:22-22"]
    assert (await admin.delete(f"/vips/{lb_vip['uuid']}")).status == 200
    assert appliance(sim, ip)["loadBalancers"] == {}
    for vm in (web, db):
        await destroy_and_expunge(admin, vm["uuid"])
