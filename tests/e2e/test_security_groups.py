"""Security groups over REST on simulated hosts: the SecurityGroup service on an L3, a
group with rules (CIDR and remote-group peers), member NICs; a host holds the rules of
exactly the member VMs it runs, through start, stop, migrate, destroy and reconnect; a
host refusing a change undoes it; bad rules change nothing."""

from __future__ import annotations

import asyncio
from typing import Any

from simulator import Simulator
from tests.e2e.test_vm_lifecycle import (
    destroy_and_expunge,
    error_of,
    inventories,
    new_vm,
    uuids,
    vm_action,
    vm_ok,
)
from tests.support.api_client import ApiClient
from tests.support.datacenter import add_full_datacenter
from tests.support.netsvc import attach_services, host_network, host_rules

HOSTS = ["10.70.0.1", "10.70.0.2"]
SSH = ("Ingress", "TCP", 22, 22, "10.0.0.0/8")


async def _group_with_rules(admin: ApiClient, l3_uuid: str, name: str) -> dict[str, Any]:
    sg = await admin.inventory("/security-groups", {"name": name})
    attached = await admin.create(f"/security-groups/{sg['uuid']}/l3-networks/{l3_uuid}", {})
    assert attached.status == 200, attached.body
    assert attached.body["inventory"]["attachedL3NetworkUuids"] == [l3_uuid]
    answer = await admin.create(
        f"/security-groups/{sg['uuid']}/rules",
        {
            "rules": [
                {
                    "type": "Ingress",
                    "protocol": "TCP",
                    "startPort": 22,
                    "endPort": 22,
                    "allowedCidr": "10.1.2.3/8",
                },
                {"type": "Ingress", "protocol": "ALL", "remoteSecurityGroupUuid": sg["uuid"]},
            ]
        },
    )
    assert answer.status == 200, answer.body
    rules = answer.body["inventory"]["rules"]
    assert [(r["protocol"], r.get("allowedCidr")) for r in rules] == [
        ("TCP", "10.0.0.0/8"),  # normalised
        ("ALL", None),
    ]
    inventory: dict[str, Any] = answer.body["inventory"]
    return inventory


async def _add_nics(admin: ApiClient, sg_uuid: str, *nic_uuids: str) -> None:
    answer = await admin.create(
        f"/security-groups/{sg_uuid}/vm-instances/nics", {"vmNicUuids": list(nic_uuids)}
    )
    assert answer.status == 200, answer.body


async def test_hosts_hold_the_rules_of_the_member_vms_they_run(
    admin: ApiClient, sim: Simulator
) -> None:
    dc = await add_full_datacenter(admin, "sg", HOSTS, storage=("nfs",))
    l3 = dc["l3"]["uuid"]
    a, b = dc["hosts"]
    ip = {a["uuid"]: HOSTS[0], b["uuid"]: HOSTS[1]}
    early = await admin.inventory("/security-groups", {"name": "early"})
    refused = error_of(
        await admin.create(f"/security-groups/{early['uuid']}/l3-networks/{l3}", {}), "NS.1005"
    )
    assert refused["details"]["networkServiceType"] == "SecurityGroup"
    answer = await attach_services(admin, l3, {"SecurityGroup": ["SecurityGroup"]})
    assert answer.status == 200, answer.body
    assert [s["networkServiceType"] for s in answer.body["inventory"]["networkServices"]] == [
        "SecurityGroup"
    ]
    sg = await _group_with_rules(admin, l3, "web")
    assert await uuids(
        admin, "/l3-networks", "networkServices.networkServiceType=SecurityGroup"
    ) == {l3}
    assert await uuids(admin, "/security-groups", "rules.allowedCidr=10.0.0.0/8") == {sg["uuid"]}
    assert await uuids(admin, "/security-groups", f"l3Network.uuid={l3}") == {sg["uuid"]}

    vm1 = await new_vm(admin, dc, "vm1", hostUuid=a["uuid"])
    vm2 = await new_vm(admin, dc, "vm2", hostUuid=b["uuid"])
    outsider = await new_vm(admin, dc, "outsider", hostUuid=a["uuid"])
    nic1, nic2 = vm1["vmNics"][0], vm2["vmNics"][0]
    assert host_rules(sim, HOSTS[0]) == {}
    candidates = f"/security-groups/{sg['uuid']}/vm-instances/candidate-nics"
    every = {vm["vmNics"][0]["uuid"] for vm in (vm1, vm2, outsider)}
    assert {
        n["uuid"] for n in (await admin.request("GET", candidates)).body["inventories"]
    } == every

    await _add_nics(admin, sg["uuid"], nic1["uuid"])
    answer = await admin.request("GET", candidates)
    assert {n["uuid"] for n in answer.body["inventories"]} == every - {nic1["uuid"]}
    peer = ("Ingress", "ALL", -1, -1, sg["uuid"])
    assert host_rules(sim, HOSTS[0]) == {nic1["uuid"]: [SSH, peer]}
    assert host_rules(sim, HOSTS[1]) == {}
    assert host_network(sim, HOSTS[0])["securityGroupMembers"] == {sg["uuid"]: [nic1["ip"]]}

    await _add_nics(admin, sg["uuid"], nic2["uuid"], nic1["uuid"])  # nic1 again: no-op
    members = sorted([nic1["ip"], nic2["ip"]])
    for host_ip in HOSTS:  # a new member's address reaches every host of the group
        assert host_network(sim, host_ip)["securityGroupMembers"] == {sg["uuid"]: members}
    assert host_rules(sim, HOSTS[1]) == {nic2["uuid"]: [SSH, peer]}
    assert outsider["vmNics"][0]["uuid"] not in host_rules(sim, HOSTS[0])
    refs = await inventories(
        admin, "/security-groups/vm-instances/nics", f"securityGroupUuid={sg['uuid']}"
    )
    assert {r["vmNicUuid"] for r in refs} == {nic1["uuid"], nic2["uuid"]}
    found = await inventories(admin, "/vm-instances/nics", f"securityGroup.uuid={sg['uuid']}")
    assert {n["uuid"] for n in found} == {nic1["uuid"], nic2["uuid"]}

    # Stop: the rules leave the host; start: they are there before the VM runs.
    await vm_ok(admin, vm2["uuid"], "stopVmInstance")
    assert host_rules(sim, HOSTS[1]) == {}
    await vm_ok(admin, vm2["uuid"], "startVmInstance", hostUuid=b["uuid"])
    assert host_rules(sim, HOSTS[1]) == {nic2["uuid"]: [SSH, peer]}

    # Migrate: the rules follow the VM, the source keeps none of it.
    moved = await vm_ok(admin, vm1["uuid"], "migrateVm", hostUuid=b["uuid"])
    assert ip[moved["hostUuid"]] == HOSTS[1]
    assert host_rules(sim, HOSTS[0]) == {}
    assert host_rules(sim, HOSTS[1]) == {nic1["uuid"]: [SSH, peer], nic2["uuid"]: [SSH, peer]}

    # A host that lost its rules gets them back when it reconnects.
    sim.machine(HOSTS[1]).network = None
    answer = await admin.action(f"/hosts/{b['uuid']}/actions", "reconnectHost", {})
    assert answer.status == 200, answer.body
    assert set(host_rules(sim, HOSTS[1])) == {nic1["uuid"], nic2["uuid"]}

    # A disabled group's rules leave the hosts; enabled, they are back. Renaming is no change.
    path = f"/security-groups/{sg['uuid']}/actions"
    answer = await admin.action(path, "changeSecurityGroupState", {"stateEvent": "disable"})
    assert answer.status == 200, answer.body
    assert answer.body["inventory"]["state"] == "Disabled"
    assert host_rules(sim, HOSTS[1]) == {}
    answer = await admin.action(path, "changeSecurityGroupState", {"stateEvent": "enable"})
    assert answer.status == 200, answer.body
    assert set(host_rules(sim, HOSTS[1])) == {nic1["uuid"], nic2["uuid"]}
    answer = await admin.action(path, "updateSecurityGroup", {"name": "web2"})
    assert answer.body["inventory"]["name"] == "web2"

    # Deleting a rule takes it off every host; sending the set again changes nothing.
    ssh_rule = next(r for r in (await _group(admin, sg["uuid"]))["rules"] if r["protocol"] == "TCP")
    answer = await admin.delete("/security-groups/rules", ruleUuids=ssh_rule["uuid"])
    assert answer.status == 200, answer.body
    assert host_rules(sim, HOSTS[1]) == {nic1["uuid"]: [peer], nic2["uuid"]: [peer]}

    # Leaving the group, then destroying a member.
    answer = await admin.delete(
        f"/security-groups/{sg['uuid']}/vm-instances/nics", vmNicUuids=nic1["uuid"]
    )
    assert answer.status == 200, answer.body
    assert host_rules(sim, HOSTS[1]) == {nic2["uuid"]: [peer]}
    assert host_network(sim, HOSTS[1])["securityGroupMembers"] == {sg["uuid"]: [nic2["ip"]]}
    await destroy_and_expunge(admin, vm2["uuid"])
    assert host_rules(sim, HOSTS[1]) == {}
    assert await inventories(admin, "/security-groups/vm-instances/nics") == []

    # Deleting the group: gone from the API; the L3 no longer refuses the detach.
    assert error_of(
        await admin.delete(f"/l3-networks/{l3}/network-services", service="SecurityGroup"),
        "NS.1004",
    )
    assert (await admin.delete(f"/security-groups/{sg['uuid']}")).status == 200
    assert await inventories(admin, "/security-groups", f"uuid={sg['uuid']}") == []
    answer = await admin.delete(f"/l3-networks/{l3}/network-services", service="SecurityGroup")
    assert answer.status == 200, answer.body
    assert answer.body["inventory"]["networkServices"] == []
    for vm in (vm1, outsider):
        await destroy_and_expunge(admin, vm["uuid"])


async def _group(admin: ApiClient, uuid: str) -> dict[str, Any]:
    [group] = await inventories(admin, "/security-groups", f"uuid={uuid}")
    return group


async def test_a_host_refusing_a_change_leaves_everything_as_it_was(
    admin: ApiClient, sim: Simulator
) -> None:
    dc = await add_full_datacenter(admin, "sgfail", HOSTS[:1], storage=("nfs",))
    l3 = dc["l3"]["uuid"]
    assert (await attach_services(admin, l3, {"SecurityGroup": ["SecurityGroup"]})).status == 200
    sg = await _group_with_rules(admin, l3, "db")
    vm = await new_vm(admin, dc, "db1")
    nic = vm["vmNics"][0]
    await _add_nics(admin, sg["uuid"], nic["uuid"])
    before_rules = host_rules(sim, HOSTS[0])
    before_group = await _group(admin, sg["uuid"])

    # The host refuses the new rule once: the API answers its error, the rule is not
    # recorded, the host holds what it held.
    sim.set_fault(HOSTS[0], "/securitygroup/refreshrulesonhost", fail="iptables: locked", times=1)
    answer = await admin.create(
        f"/security-groups/{sg['uuid']}/rules",
        {"rules": [{"type": "Ingress", "protocol": "UDP", "startPort": 53, "endPort": 53}]},
    )
    assert answer.status != 200
    assert "iptables: locked" in str(answer.body)
    assert await _group(admin, sg["uuid"]) == before_group
    assert host_rules(sim, HOSTS[0]) == before_rules

    # Leaving the group, refused the same way: the NIC is still a member.
    sim.set_fault(HOSTS[0], "/securitygroup/refreshrulesonhost", fail="iptables: locked", times=1)
    answer = await admin.delete(
        f"/security-groups/{sg['uuid']}/vm-instances/nics", vmNicUuids=nic["uuid"]
    )
    assert answer.status != 200
    assert host_rules(sim, HOSTS[0]) == before_rules
    refs = await inventories(admin, "/security-groups/vm-instances/nics")
    assert [r["vmNicUuid"] for r in refs] == [nic["uuid"]]

    # A start whose rules the host refuses does not happen: Stopped, nothing on the host.
    await vm_ok(admin, vm["uuid"], "stopVmInstance")
    assert host_rules(sim, HOSTS[0]) == {}
    sim.set_fault(HOSTS[0], "/securitygroup/refreshrulesonhost", fail="iptables: locked", times=1)
    failed = await admin.action(f"/vm-instances/{vm['uuid']}/actions", "startVmInstance", {})
    assert failed.status != 200
    [again] = await inventories(admin, "/vm-instances", f"uuid={vm['uuid']}")
    assert again["state"] == "Stopped"
    assert vm["uuid"] not in (sim.machine(HOSTS[0]).vms or {})
    assert host_rules(sim, HOSTS[0]) == {}
    started = await vm_ok(admin, vm["uuid"], "startVmInstance")
    assert started["state"] == "Running"
    assert host_rules(sim, HOSTS[0]) == before_rules
    await destroy_and_expunge(admin, vm["uuid"])


async def test_bad_input_answers_structured_errors_and_changes_nothing(
    admin: ApiClient, sim: Simulator
) -> None:
    dc = await add_full_datacenter(admin, "sgbad", HOSTS[:1], storage=("nfs",))
    l3 = dc["l3"]["uuid"]
    assert (await attach_services(admin, l3, {"SecurityGroup": ["SecurityGroup"]})).status == 200
    sg = await _group_with_rules(admin, l3, "bad")
    before = await _group(admin, sg["uuid"])
    path = f"/security-groups/{sg['uuid']}/rules"
    for rule, code in (
        ({"type": "Ingress", "protocol": "TCP", "allowedCidr": "0.0.0.0/0"}, "SYS.1007"),
        ({"type": "Ingress", "protocol": "TCP", "startPort": 90, "endPort": 80}, "SYS.1007"),
        ({"type": "Egress", "protocol": "UDP", "startPort": 1, "endPort": 70000}, "SYS.1007"),
        ({"type": "Ingress", "protocol": "ICMP", "allowedCidr": "10.0.0.300/8"}, "SYS.1007"),
        ({"type": "Ingress", "protocol": "ICMP", "startPort": 8}, "SYS.1007"),
        (
            {
                "type": "Ingress",
                "protocol": "TCP",
                "startPort": 22,
                "endPort": 22,
                "allowedCidr": "10.0.0.0/8",
            },
            "SG.1001",
        ),
        ({"type": "Ingress", "remoteSecurityGroupUuid": "f" * 32}, "SYS.1003"),
    ):
        answer = await admin.create(path, {"rules": [rule]})
        error_of(answer, code)
        assert await _group(admin, sg["uuid"]) == before
    error_of(await admin.create(path, {"rules": [{"type": "Sideways"}]}), "SYS.1007")
    # A NIC whose L3 the group is not attached to, and one that does not exist.
    other = await admin.inventory(
        "/l3-networks", {"name": "other", "l2NetworkUuid": dc["l2"]["uuid"]}
    )
    vm = await new_vm(admin, dc, "bad1")
    detached = await admin.delete(f"/security-groups/{sg['uuid']}/l3-networks/{l3}")
    assert detached.status == 200, detached.body
    nics_path = f"/security-groups/{sg['uuid']}/vm-instances/nics"
    error_of(await admin.create(nics_path, {"vmNicUuids": [vm["vmNics"][0]["uuid"]]}), "SG.1002")
    error_of(await admin.create(nics_path, {"vmNicUuids": ["e" * 32]}), "SYS.1003")
    error_of(
        await admin.delete(f"/security-groups/{sg['uuid']}/l3-networks/{other['uuid']}"), "SG.1004"
    )
    assert await inventories(admin, "/security-groups/vm-instances/nics") == []
    # Providers and types that do not exist.
    services = f"/l3-networks/{l3}/network-services"
    error_of(await admin.create(services, {"networkServices": {"d" * 32: ["DHCP"]}}), "NS.1001")
    error_of(await attach_services(admin, l3, {"SecurityGroup": ["DHCP"]}), "NS.1002")
    error_of(await attach_services(admin, l3, {"Flat": ["SecurityGroup"]}), "NS.1002")
    await destroy_and_expunge(admin, vm["uuid"])


async def test_changes_waiting_for_a_host_share_one_refresh(
    admin: ApiClient, sim: Simulator
) -> None:
    dc = await add_full_datacenter(admin, "sgbatch", HOSTS[:1], storage=("nfs",))
    l3 = dc["l3"]["uuid"]
    assert (await attach_services(admin, l3, {"SecurityGroup": ["SecurityGroup"]})).status == 200
    vm = await new_vm(admin, dc, "busy")
    nic = vm["vmNics"][0]["uuid"]
    groups = []
    for i in range(5):
        sg = await admin.inventory("/security-groups", {"name": f"g{i}"})
        attached = await admin.create(f"/security-groups/{sg['uuid']}/l3-networks/{l3}", {})
        assert attached.status == 200, attached.body
        await _add_nics(admin, sg["uuid"], nic)
        groups.append(sg["uuid"])
    refreshes = host_network(sim, HOSTS[0])["securityGroupRefreshes"]

    # The first refresh is held on the host; the four that queue behind it meanwhile are
    # served by one more command, which reads all four rules.
    sim.set_fault(HOSTS[0], "/securitygroup/refreshrulesonhost", delay=0.5, times=1)
    answers = await asyncio.gather(
        *(
            admin.create(
                f"/security-groups/{g}/rules",
                {"rules": [{"type": "Egress", "protocol": "UDP", "startPort": i, "endPort": i}]},
            )
            for i, g in enumerate(groups, start=1)
        )
    )
    assert all(a.status == 200 for a in answers), [a.body for a in answers]
    assert host_network(sim, HOSTS[0])["securityGroupRefreshes"] == refreshes + 2
    held = host_rules(sim, HOSTS[0])[nic]
    assert sorted(r[2] for r in held) == [1, 2, 3, 4, 5]
    await destroy_and_expunge(admin, vm["uuid"])


async def test_a_burst_of_member_vms_starting_on_a_host_is_served_by_few_commands(
    admin: ApiClient, sim: Simulator
) -> None:
    dc = await add_full_datacenter(admin, "sgburst", HOSTS[:1], storage=("nfs",))
    l3 = dc["l3"]["uuid"]
    assert (await attach_services(admin, l3, {"SecurityGroup": ["SecurityGroup"]})).status == 200
    sg = await _group_with_rules(admin, l3, "burst")
    vms = [await new_vm(admin, dc, f"b{i}", strategy="CreateStopped") for i in range(5)]
    await _add_nics(admin, sg["uuid"], *(vm["vmNics"][0]["uuid"] for vm in vms))
    before = host_network(sim, HOSTS[0]).get("securityGroupRefreshes", 0)

    # Each start asks for its rules before it boots and again once it runs: 10 refreshes.
    # Held on the host, the first keeps the others waiting together.
    sim.set_fault(HOSTS[0], "/securitygroup/refreshrulesonhost", delay=1.0, times=1)
    started = await asyncio.gather(*(vm_action(admin, vm["uuid"], "startVmInstance") for vm in vms))
    assert all(a.status == 200 for a in started), [a.body for a in started]
    assert host_network(sim, HOSTS[0])["securityGroupRefreshes"] - before <= 7
    assert set(host_rules(sim, HOSTS[0])) == {vm["vmNics"][0]["uuid"] for vm in vms}
    for vm in vms:
        await destroy_and_expunge(admin, vm["uuid"])


async def test_a_disconnected_host_refuses_nothing_and_catches_up_when_it_reconnects(
    admin: ApiClient, sim: Simulator
) -> None:
    dc = await add_full_datacenter(admin, "sgdown", HOSTS, storage=("nfs",))
    l3 = dc["l3"]["uuid"]
    a, b = dc["hosts"]
    assert (await attach_services(admin, l3, {"SecurityGroup": ["SecurityGroup"]})).status == 200
    sg = await _group_with_rules(admin, l3, "down")
    vm1 = await new_vm(admin, dc, "d1", hostUuid=a["uuid"])
    vm2 = await new_vm(admin, dc, "d2", hostUuid=b["uuid"])
    nic1, nic2 = vm1["vmNics"][0]["uuid"], vm2["vmNics"][0]["uuid"]
    await _add_nics(admin, sg["uuid"], nic1, nic2)

    await sim.set_alive(HOSTS[1], False)
    failed = await admin.action(f"/hosts/{b['uuid']}/actions", "reconnectHost", {})
    assert failed.status != 200
    answer = await admin.create(
        f"/security-groups/{sg['uuid']}/rules",
        {"rules": [{"type": "Ingress", "protocol": "TCP", "startPort": 443, "endPort": 443}]},
    )
    assert answer.status == 200, answer.body
    https = ("Ingress", "TCP", 443, 443, "0.0.0.0/0")
    assert https in host_rules(sim, HOSTS[0])[nic1]
    assert https not in host_rules(sim, HOSTS[1])[nic2]  # down: it missed the change

    await sim.set_alive(HOSTS[1], True)
    back = await admin.action(f"/hosts/{b['uuid']}/actions", "reconnectHost", {})
    assert back.status == 200, back.body
    assert https in host_rules(sim, HOSTS[1])[nic2]
    for vm in (vm1, vm2):
        await destroy_and_expunge(admin, vm["uuid"])


async def test_a_stopped_member_expunged_leaves_the_hosts_of_its_group(
    admin: ApiClient, sim: Simulator
) -> None:
    dc = await add_full_datacenter(admin, "sggone", HOSTS, storage=("nfs",))
    l3 = dc["l3"]["uuid"]
    a, b = dc["hosts"]
    assert (await attach_services(admin, l3, {"SecurityGroup": ["SecurityGroup"]})).status == 200
    sg = await _group_with_rules(admin, l3, "gone")  # its members may reach each other
    vm1 = await new_vm(admin, dc, "g1", hostUuid=a["uuid"])
    vm2 = await new_vm(admin, dc, "g2", hostUuid=b["uuid"])
    nic1, nic2 = vm1["vmNics"][0], vm2["vmNics"][0]
    await _add_nics(admin, sg["uuid"], nic1["uuid"], nic2["uuid"])
    both = {sg["uuid"]: sorted([nic1["ip"], nic2["ip"]])}

    # Stopped, then destroyed while stopped: still a member, its address still a peer of
    # vm1's rules (as a stop keeps it).
    await vm_ok(admin, vm2["uuid"], "stopVmInstance")
    assert (await admin.delete(f"/vm-instances/{vm2['uuid']}")).status == 200
    assert host_network(sim, HOSTS[0])["securityGroupMembers"] == both

    # The host refusing to let the address go fails the expunge: the VM stays Destroyed,
    # its NIC a member there and in the database.
    sim.set_fault(HOSTS[0], "/securitygroup/refreshrulesonhost", fail="iptables: locked", times=1)
    refused = await vm_action(admin, vm2["uuid"], "expungeVmInstance")
    assert refused.status != 200
    assert "iptables: locked" in str(refused.body)
    [kept] = await inventories(admin, "/vm-instances", f"uuid={vm2['uuid']}")
    assert kept["state"] == "Destroyed"
    refs = await inventories(admin, "/security-groups/vm-instances/nics")
    assert sorted(r["vmNicUuid"] for r in refs) == sorted([nic1["uuid"], nic2["uuid"]])
    assert host_network(sim, HOSTS[0])["securityGroupMembers"] == both

    # Expunged: out of the group and off every host that named it as a peer (its address
    # goes back to the network, and whoever gets it next is no member).
    answer = await vm_action(admin, vm2["uuid"], "expungeVmInstance")
    assert answer.status == 200, answer.body
    refs = await inventories(admin, "/security-groups/vm-instances/nics")
    assert [r["vmNicUuid"] for r in refs] == [nic1["uuid"]]
    assert host_network(sim, HOSTS[0])["securityGroupMembers"] == {sg["uuid"]: [nic1["ip"]]}
    await destroy_and_expunge(admin, vm1["uuid"])
