"""Port forwarding on a VIP over REST (flat provider, simulated hosts): rules share a VIP
but never a port, follow their VM through stop and start, detach and attach, go with the
VIP; a host refusing leaves a rule as it was; bad input changes nothing."""

from __future__ import annotations

from typing import Any

from simulator import Simulator
from tests.e2e.test_vm_lifecycle import (
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
from tests.support.netsvc import attach_services, host_forwards, new_vip, public_l3

HOSTS = ["10.85.0.1"]
FLAT = {"Flat": ["DHCP", "PortForwarding"]}


async def _rule(admin: ApiClient, uuid: str) -> dict[str, Any]:
    [rule] = await inventories(admin, "/port-forwarding", f"uuid={uuid}")
    return rule


async def test_rules_share_a_vip_follow_their_vm_and_go_with_the_vip(
    admin: ApiClient, sim: Simulator
) -> None:
    dc = await add_full_datacenter(admin, "pf", HOSTS, storage=("nfs",))
    assert (await attach_services(admin, dc["l3"]["uuid"], FLAT)).status == 200
    public = await public_l3(admin, dc, "pf-public")
    vip = await new_vip(admin, public["uuid"], "pf-vip", requiredIp="16.16.16.30")
    vm = await new_vm(admin, dc, "web")
    nic = vm["vmNics"][0]

    web = await admin.inventory(
        "/port-forwarding",
        {
            "name": "web",
            "vipUuid": vip["uuid"],
            "vipPortStart": 80,
            "privatePortStart": 8080,
            "protocolType": "TCP",
            "vmNicUuid": nic["uuid"],
        },
    )
    assert (web["vipPortEnd"], web["privatePortEnd"]) == (80, 8080)
    assert web["guestIp"] == nic["ip"]
    dns = await admin.inventory(
        "/port-forwarding",
        {"name": "dns", "vipUuid": vip["uuid"], "vipPortStart": 53, "protocolType": "UDP"},
    )
    assert dns.get("vmNicUuid") is None
    assert host_forwards(sim, HOSTS[0]) == {"16.16.16.30:TCP:80-80": (nic["ip"], 8080, 8080)}
    [shared] = await inventories(admin, "/vips", f"uuid={vip['uuid']}")
    assert shared["useFor"] == "PortForwarding"
    assert sorted(r["uuid"] for r in shared["servicesRefs"]) == sorted([web["uuid"], dns["uuid"]])

    # A port another rule has, and a use that cannot share the VIP: refused, nothing made.
    overlap = {"name": "x", "vipUuid": vip["uuid"], "vipPortStart": 70, "vipPortEnd": 90}
    error_of(await admin.create("/port-forwarding", {**overlap, "protocolType": "TCP"}), "VIP.1003")
    error_of(await admin.create("/eips", {"name": "e", "vipUuid": vip["uuid"]}), "VIP.1001")
    assert len(await inventories(admin, "/port-forwarding")) == 2

    # The rule follows its VM; detach and attach while it runs.
    await vm_ok(admin, vm["uuid"], "stopVmInstance")
    assert host_forwards(sim, HOSTS[0]) == {}
    await vm_ok(admin, vm["uuid"], "startVmInstance")
    assert list(host_forwards(sim, HOSTS[0])) == ["16.16.16.30:TCP:80-80"]
    answer = await admin.delete(f"/port-forwarding/{web['uuid']}/vm-instances/nics")
    assert answer.status == 200, answer.body
    assert host_forwards(sim, HOSTS[0]) == {}
    answer = await admin.create(
        f"/port-forwarding/{dns['uuid']}/vm-instances/nics/{nic['uuid']}", {}
    )
    assert answer.status == 200, answer.body
    assert host_forwards(sim, HOSTS[0]) == {"16.16.16.30:UDP:53-53": (nic["ip"], 53, 53)}

    # Deleting the VIP deletes its rules (and takes them off the host).
    assert (await admin.delete(f"/vips/{vip['uuid']}")).status == 200
    assert await inventories(admin, "/port-forwarding") == []
    assert host_forwards(sim, HOSTS[0]) == {}
    await destroy_and_expunge(admin, vm["uuid"])


async def test_refusals_and_bad_input_change_nothing(admin: ApiClient, sim: Simulator) -> None:
    dc = await add_full_datacenter(admin, "pfbad", HOSTS, storage=("nfs",))
    public = await public_l3(admin, dc, "pfbad-public")
    vip = await new_vip(admin, public["uuid"], "v")
    vm = await new_vm(admin, dc, "app")
    nic = vm["vmNics"][0]
    base = {"name": "r", "vipUuid": vip["uuid"], "protocolType": "TCP"}
    for params in (
        {"vipPortStart": 90, "vipPortEnd": 80},
        {"vipPortStart": 80, "vipPortEnd": 81, "privatePortStart": 80, "privatePortEnd": 90},
        {"vipPortStart": 0},
        {"vipPortStart": 80, "protocolType": "ICMP"},
        {"vipPortStart": 80, "allowedCidr": "10.0.0.0/40"},
    ):
        error_of(await admin.create("/port-forwarding", {**base, **params}), "SYS.1007")
    # The NIC's network has no PortForwarding service: refused, and the ports stay free.
    error_of(
        await admin.create(
            "/port-forwarding", {**base, "vipPortStart": 22, "vmNicUuid": nic["uuid"]}
        ),
        "NS.1005",
    )
    assert await inventories(admin, "/port-forwarding") == []
    [free] = await inventories(admin, "/vips", f"uuid={vip['uuid']}")
    assert free.get("useFor") is None
    assert (await attach_services(admin, dc["l3"]["uuid"], FLAT)).status == 200
    rule = await admin.inventory("/port-forwarding", {**base, "vipPortStart": 22})

    sim.set_fault(
        HOSTS[0], "/flatnetworkprovider/portforwarding/apply", fail="iptables: locked", times=1
    )
    path = f"/port-forwarding/{rule['uuid']}/vm-instances/nics/{nic['uuid']}"
    refused = await admin.create(path, {})
    assert refused.status != 200
    assert "iptables: locked" in str(refused.body)
    assert (await _rule(admin, rule["uuid"])).get("vmNicUuid") is None
    assert host_forwards(sim, HOSTS[0]) == {}
    assert (await admin.create(path, {})).status == 200
    error_of(await admin.create(path, {}), "PF.1001")

    # UpdatePortForwardingRule: name and description only; bad input changes nothing.
    actions = f"/port-forwarding/{rule['uuid']}/actions"
    error_of(await admin.action(actions, "updatePortForwardingRule", {"name": ""}), "SYS.1007")
    error_of(
        await admin.action(f"/port-forwarding/{'0' * 32}/actions", "updatePortForwardingRule", {}),
        "SYS.1003",
    )
    assert (await _rule(admin, rule["uuid"]))["name"] == "r"
    renamed = await admin.action(
        actions, "updatePortForwardingRule", {"name": "ssh", "description": "to the app"}
    )
    assert renamed.status == 200, renamed.body
    assert (renamed.body["inventory"]["name"], renamed.body["inventory"]["description"]) == (
        "ssh",
        "to the app",
    )
    [found] = await inventories(admin, "/port-forwarding", "name=ssh")
    assert found["uuid"] == rule["uuid"]
    assert found["vmNicUuid"] == nic["uuid"]  # still attached
    assert (await admin.delete(f"/port-forwarding/{rule['uuid']}")).status == 200
    assert host_forwards(sim, HOSTS[0]) == {}
    [free] = await inventories(admin, "/vips", f"uuid={vip['uuid']}")
    assert free.get("useFor") is None
    await destroy_and_expunge(admin, vm["uuid"])


async def test_a_disabled_rule_stays_attached_and_off_its_host(
    admin: ApiClient, sim: Simulator
) -> None:
    dc = await add_full_datacenter(admin, "pfstate", HOSTS, storage=("nfs",))
    assert (await attach_services(admin, dc["l3"]["uuid"], FLAT)).status == 200
    public = await public_l3(admin, dc, "pfstate-public")
    vip = await new_vip(admin, public["uuid"], "v", requiredIp="16.16.16.31")
    vm = await new_vm(admin, dc, "app")
    nic = vm["vmNics"][0]
    rule = await admin.inventory(
        "/port-forwarding",
        {
            "name": "ssh",
            "vipUuid": vip["uuid"],
            "vipPortStart": 2222,
            "privatePortStart": 22,
            "protocolType": "TCP",
            "vmNicUuid": nic["uuid"],
        },
    )
    actions = f"/port-forwarding/{rule['uuid']}/actions"
    on_host = {"16.16.16.31:TCP:2222-2222": (nic["ip"], 22, 22)}
    assert host_forwards(sim, HOSTS[0]) == on_host

    # Bad input: refused, nothing changed.
    change = "changePortForwardingRuleState"
    error_of(await admin.action(actions, change, {"stateEvent": "off"}), "SYS.1007")
    error_of(await admin.action(actions, change, {}), "SYS.1007")
    missing = f"/port-forwarding/{'0' * 32}/actions"
    error_of(await admin.action(missing, change, {"stateEvent": "disable"}), "SYS.1003")
    assert (await _rule(admin, rule["uuid"]))["state"] == "Enabled"
    assert host_forwards(sim, HOSTS[0]) == on_host

    # A host refusing the revoke leaves the rule Enabled and on the host.
    revoke = "/flatnetworkprovider/portforwarding/delete"
    sim.set_fault(HOSTS[0], revoke, fail="iptables: locked", times=1)
    refused = await admin.action(actions, change, {"stateEvent": "disable"})
    assert refused.status != 200
    assert "iptables: locked" in str(refused.body)
    assert (await _rule(admin, rule["uuid"]))["state"] == "Enabled"
    assert host_forwards(sim, HOSTS[0]) == on_host

    answer = await admin.action(actions, change, {"stateEvent": "disable"})
    assert answer.status == 200, answer.body
    assert answer.body["inventory"]["state"] == "Disabled"
    assert answer.body["inventory"]["vmNicUuid"] == nic["uuid"]
    assert host_forwards(sim, HOSTS[0]) == {}
    # Disabling again changes nothing; a restart of its VM does not put it back.
    assert (await admin.action(actions, change, {"stateEvent": "disable"})).status == 200
    await vm_ok(admin, vm["uuid"], "stopVmInstance")
    await vm_ok(admin, vm["uuid"], "startVmInstance")
    assert host_forwards(sim, HOSTS[0]) == {}

    # A host refusing the apply leaves it Disabled; then it goes back on.
    apply = "/flatnetworkprovider/portforwarding/apply"
    sim.set_fault(HOSTS[0], apply, fail="iptables: locked", times=1)
    refused = await admin.action(actions, change, {"stateEvent": "enable"})
    assert refused.status != 200
    assert (await _rule(admin, rule["uuid"]))["state"] == "Disabled"
    assert host_forwards(sim, HOSTS[0]) == {}
    answer = await admin.action(actions, change, {"stateEvent": "enable"})
    assert answer.status == 200, answer.body
    assert answer.body["inventory"]["state"] == "Enabled"
    assert host_forwards(sim, HOSTS[0]) == on_host

    # Disabled, it detaches and attaches without a word to the host (which would refuse).
    assert (await admin.action(actions, change, {"stateEvent": "disable"})).status == 200
    sim.set_fault(HOSTS[0], apply, fail="iptables: locked")
    sim.set_fault(HOSTS[0], revoke, fail="iptables: locked")
    detached = await admin.delete(f"/port-forwarding/{rule['uuid']}/vm-instances/nics")
    assert detached.status == 200, detached.body
    attached = await admin.create(
        f"/port-forwarding/{rule['uuid']}/vm-instances/nics/{nic['uuid']}", {}
    )
    assert attached.status == 200, attached.body
    assert attached.body["inventory"]["state"] == "Disabled"
    assert host_forwards(sim, HOSTS[0]) == {}
    sim.clear_faults(HOSTS[0])
    assert (await admin.delete(f"/port-forwarding/{rule['uuid']}")).status == 200
    [free] = await inventories(admin, "/vips", f"uuid={vip['uuid']}")
    assert free.get("useFor") is None
    await destroy_and_expunge(admin, vm["uuid"])


async def test_the_nics_a_rule_could_go_to(admin: ApiClient, sim: Simulator) -> None:
    dc = await add_full_datacenter(admin, "pfcand", HOSTS, storage=("nfs",))
    guest = dc["l3"]["uuid"]
    public = await public_l3(admin, dc, "pfcand-public")
    vip = await new_vip(admin, public["uuid"], "v")
    web, db = [await new_vm(admin, dc, name) for name in ("web", "db")]
    web_nic, db_nic = web["vmNics"][0], db["vmNics"][0]
    base = {"vipUuid": vip["uuid"], "protocolType": "TCP"}
    ssh = await admin.inventory(
        "/port-forwarding", {**base, "name": "ssh", "vipPortStart": 2222, "privatePortStart": 22}
    )

    async def candidates(rule: dict[str, Any]) -> list[str]:
        answer = await admin.request(
            "GET", f"/port-forwarding/{rule['uuid']}/vm-instances/candidate-nics"
        )
        assert answer.status == 200, answer.body
        return sorted(n["uuid"] for n in answer.body["inventories"])

    error_of(
        await admin.request("GET", f"/port-forwarding/{'0' * 32}/vm-instances/candidate-nics"),
        "SYS.1003",
    )
    assert await candidates(ssh) == []  # no PortForwarding service on the guest network
    assert (await attach_services(admin, guest, FLAT)).status == 200
    assert await candidates(ssh) == sorted([web_nic["uuid"], db_nic["uuid"]])

    # Attached, it has none; a rule for the same guest ports leaves out the NIC it went to,
    # one for other ports (or another protocol) does not.
    answer = await admin.create(
        f"/port-forwarding/{ssh['uuid']}/vm-instances/nics/{db_nic['uuid']}", {}
    )
    assert answer.status == 200, answer.body
    assert await candidates(ssh) == []
    ssh2 = await admin.inventory(
        "/port-forwarding",
        {**base, "name": "ssh2", "vipPortStart": 2200, "vipPortEnd": 2201, "privatePortStart": 21},
    )
    web80 = await admin.inventory("/port-forwarding", {**base, "name": "web", "vipPortStart": 80})
    dns = await admin.inventory(
        "/port-forwarding",
        {**base, "name": "dns", "vipPortStart": 53, "privatePortStart": 22, "protocolType": "UDP"},
    )
    assert await candidates(ssh2) == [web_nic["uuid"]]
    assert await candidates(web80) == sorted([web_nic["uuid"], db_nic["uuid"]])
    assert await candidates(dns) == sorted([web_nic["uuid"], db_nic["uuid"]])
    # A disabled rule has candidates too (it attaches without reaching the host).
    actions = f"/port-forwarding/{web80['uuid']}/actions"
    answer = await admin.action(actions, "changePortForwardingRuleState", {"stateEvent": "disable"})
    assert answer.status == 200, answer.body
    assert await candidates(web80) == sorted([web_nic["uuid"], db_nic["uuid"]])
    # A destroyed VM's NIC is no candidate.
    assert (await admin.delete(f"/vm-instances/{web['uuid']}")).status == 200
    assert await candidates(web80) == [db_nic["uuid"]]
    assert (await admin.delete(f"/vips/{vip['uuid']}")).status == 200
    if await get_vm(admin, web["uuid"]) is not None:  # Delay policy: still Destroyed
        assert (await vm_action(admin, web["uuid"], "expungeVmInstance")).status == 200
    await destroy_and_expunge(admin, db["uuid"])
