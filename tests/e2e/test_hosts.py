"""KVM hosts end to end: AddKVMHost over REST against the in-process simulator, queries
with joins, bad input that changes nothing, state changes, updates, deletes and cascades,
and the host service's bus messages. Ping tracking and reconnects: test_host_tracking.py."""

from __future__ import annotations

from typing import Any

from simulator import Simulator
from tests.support.api_client import ApiClient
from tests.support.datacenter import (
    add_cluster,
    add_datacenter,
    add_kvm_host,
    add_zone,
    get_host,
)
from zstackpy.node.node import ManagementNode
from zstackpy.services.host.messages import (
    HostAgentCallMsg,
    HostAgentCallReply,
    ListHostsMsg,
    ListHostsReply,
)

GIB = 1 << 30


async def _host_count(admin: ApiClient) -> int:
    answer = await admin.query("/hosts", count="true")
    total: int = answer.body["total"]
    return total


# ----- add and query ----------------------------------------------------------------------


async def test_three_hosts_query_back_with_joins(admin: ApiClient) -> None:
    zone, cluster, hosts = await add_datacenter(admin, "dc", ["10.1.0.1", "10.1.0.2", "10.1.0.3"])
    other_zone, _, _ = await add_datacenter(admin, "other", ["10.2.0.1"])
    first = hosts[0]
    assert first["status"] == "Connected"
    assert first["state"] == "Enabled"
    assert first["hypervisorType"] == "KVM"
    assert first["clusterUuid"] == cluster["uuid"]
    assert first["zoneUuid"] == zone["uuid"]
    # Simulator defaults: 32 CPUs x ratio 10, 128 GiB minus kvm reservedMemory (1 GiB).
    assert first["cpuNum"] == 32
    assert first["totalCpuCapacity"] == first["availableCpuCapacity"] == 320
    assert first["totalMemoryCapacity"] == first["availableMemoryCapacity"] == 127 * GIB
    assert first["username"] == "root"
    assert first["sshPort"] == 22
    assert first["osDistribution"]
    assert "password" not in first
    assert not any("token" in key.lower() for key in first)

    in_cluster = await admin.query("/hosts", "cluster.name=dc-cluster")
    assert sorted(h["managementIp"] for h in in_cluster.body["inventories"]) == [
        "10.1.0.1",
        "10.1.0.2",
        "10.1.0.3",
    ]
    by_zone = await admin.query("/hosts", "zone.name=other-zone")
    assert [h["managementIp"] for h in by_zone.body["inventories"]] == ["10.2.0.1"]
    zones = await admin.query("/zones", "host.managementIp=10.1.0.2")
    assert [z["uuid"] for z in zones.body["inventories"]] == [zone["uuid"]]
    clusters = await admin.query("/clusters", "host.name=other-host-0")
    assert [c["zoneUuid"] for c in clusters.body["inventories"]] == [other_zone["uuid"]]
    kvm = await admin.query("/zones", "host.username=root", "host.osDistribution not null")
    assert len(kvm.body["inventories"]) == 2
    counted = await admin.query("/hosts", "sshPort=22", "status=Connected", count="true")
    assert counted.body["total"] == 4


async def test_duplicate_management_ip_changes_nothing(admin: ApiClient) -> None:
    _, cluster, [host] = await add_datacenter(admin, "dup", ["10.3.0.1"])
    again = await admin.create(
        "/hosts/kvm",
        {
            "name": "twin",
            "managementIp": "10.3.0.1",
            "clusterUuid": cluster["uuid"],
            "username": "root",
            "password": "password",
        },
    )
    assert again.error["code"] == "HOST.1001"
    assert again.error["details"]["managementIp"] == "10.3.0.1"
    assert await _host_count(admin) == 1
    assert (await get_host(admin, host["uuid"]))["name"] == "dup-host-0"


async def test_wrong_credentials_leave_no_host(admin: ApiClient, sim: Simulator) -> None:
    _, cluster, _ = await add_datacenter(admin, "cred", [])
    sim.declare("10.4.0.1", password="the-right-one")
    answer = await admin.create(
        "/hosts/kvm",
        {
            "name": "h",
            "managementIp": "10.4.0.1",
            "clusterUuid": cluster["uuid"],
            "username": "root",
            "password": "a-wrong-one",
        },
    )
    assert answer.error["code"] == "AGENT.1007"
    assert "authentication failed" in answer.error["description"]
    assert await _host_count(admin) == 0
    # The same address is free again: the failed add left nothing behind.
    host = await add_kvm_host(admin, cluster["uuid"], "10.4.0.1", password="the-right-one")
    assert host["status"] == "Connected"


async def test_unreachable_host_leaves_no_host(admin: ApiClient, sim: Simulator) -> None:
    _, cluster, _ = await add_datacenter(admin, "dead", [])
    sim.declare("10.5.0.1")
    await sim.set_alive("10.5.0.1", False)
    answer = await admin.create(
        "/hosts/kvm",
        {
            "name": "h",
            "managementIp": "10.5.0.1",
            "clusterUuid": cluster["uuid"],
            "username": "root",
            "password": "password",
        },
    )
    # Deployment is the first contact, so an unreachable machine fails there.
    assert answer.error["code"] == "AGENT.1007"
    assert "unreachable" in answer.error["description"]
    assert await _host_count(admin) == 0


async def test_a_failing_connect_step_rolls_the_add_back(admin: ApiClient, sim: Simulator) -> None:
    _, cluster, _ = await add_datacenter(admin, "roll", [])
    sim.declare("10.6.0.1")
    sim.set_fault("10.6.0.1", "/host/capacity", fail="capacity probe exploded")
    answer = await admin.create(
        "/hosts/kvm",
        {
            "name": "h",
            "managementIp": "10.6.0.1",
            "clusterUuid": cluster["uuid"],
            "username": "root",
            "password": "password",
        },
    )
    assert answer.error["code"] == "AGENT.1003"
    assert "capacity probe exploded" in answer.error["details"]["error"]
    assert await _host_count(admin) == 0


async def test_add_refuses_a_missing_or_non_kvm_cluster(admin: ApiClient) -> None:
    zone = await add_zone(admin, "z")
    sim_cluster = await admin.inventory(
        "/clusters", {"zoneUuid": zone["uuid"], "name": "s", "hypervisorType": "Simulator"}
    )
    base = {"name": "h", "managementIp": "10.7.0.1", "username": "root", "password": "p"}
    missing = await admin.create("/hosts/kvm", {**base, "clusterUuid": "ab" * 16})
    assert missing.error["code"] == "SYS.1003"
    wrong = await admin.create("/hosts/kvm", {**base, "clusterUuid": sim_cluster["uuid"]})
    assert wrong.error["code"] == "HOST.1005"
    assert await _host_count(admin) == 0


# ----- state, update, delete ----------------------------------------------------------------


async def test_change_host_state_and_maintenance(admin: ApiClient, node: ManagementNode) -> None:
    _, _, [host] = await add_datacenter(admin, "st", ["10.11.0.1"])
    path = f"/hosts/{host['uuid']}/actions"

    async def change(event: str) -> dict[str, Any]:
        answer = await admin.action(path, "changeHostState", {"stateEvent": event})
        assert answer.status == 200, answer.body
        inventory: dict[str, Any] = answer.body["inventory"]
        return inventory

    assert (await change("disable"))["state"] == "Disabled"
    assert (await change("enable"))["state"] == "Enabled"
    assert (await change("maintain"))["state"] == "Maintenance"
    refused = await admin.action(path, "changeHostState", {"stateEvent": "disable"})
    assert refused.error["code"] == "HOST.1006"
    assert (await change("enable"))["state"] == "Enabled"
    bad = await admin.action(path, "changeHostState", {"stateEvent": "explode"})
    assert bad.error["code"] == "SYS.1007"
    assert (await get_host(admin, host["uuid"]))["state"] == "Enabled"


async def test_update_host_and_kvm_host(admin: ApiClient) -> None:
    _, _, [host, other] = await add_datacenter(admin, "up", ["10.12.0.1", "10.12.0.2"])
    updated = await admin.action(
        f"/hosts/{host['uuid']}/actions", "updateHost", {"name": "renamed", "description": "d"}
    )
    assert updated.status == 200, updated.body
    assert updated.body["inventory"]["name"] == "renamed"
    taken = await admin.action(
        f"/hosts/{host['uuid']}/actions", "updateHost", {"managementIp": "10.12.0.2"}
    )
    assert taken.error["code"] == "HOST.1001"
    kvm = await admin.action(
        f"/hosts/kvm/{other['uuid']}/actions",
        "updateKVMHost",
        {"username": "admin", "password": "new-secret", "sshPort": 2222},
    )
    assert kvm.status == 200, kvm.body
    assert kvm.body["inventory"]["username"] == "admin"
    assert kvm.body["inventory"]["sshPort"] == 2222
    assert "password" not in kvm.body["inventory"]
    found = await admin.query("/hosts", "sshPort=2222")
    assert [h["uuid"] for h in found.body["inventories"]] == [other["uuid"]]


async def test_delete_host_and_cascades(admin: ApiClient, sim: Simulator) -> None:
    zone, cluster, hosts = await add_datacenter(admin, "del", ["10.13.0.1", "10.13.0.2"])
    deleted = await admin.delete(f"/hosts/{hosts[0]['uuid']}")
    assert deleted.status == 200, deleted.body
    assert await _host_count(admin) == 1
    # The address is free again.
    await add_kvm_host(admin, cluster["uuid"], "10.13.0.1")
    assert await _host_count(admin) == 2

    await admin.delete(f"/clusters/{cluster['uuid']}")
    assert await _host_count(admin) == 0

    second = await add_cluster(admin, zone["uuid"], "again")
    await add_kvm_host(admin, second["uuid"], "10.13.0.3")
    await admin.delete(f"/zones/{zone['uuid']}")
    assert await _host_count(admin) == 0
    missing = await admin.delete(f"/hosts/{hosts[1]['uuid']}")
    assert missing.error["code"] == "SYS.1003"


# ----- bus messages ---------------------------------------------------------------------


async def test_agent_calls_and_host_lists_over_the_bus(
    admin: ApiClient, sim: Simulator, node: ManagementNode
) -> None:
    zone, cluster, [host, down] = await add_datacenter(admin, "bus", ["10.15.0.1", "10.15.0.2"])
    bus = node.context.bus
    reply = await bus.request(
        HostAgentCallMsg(host_uuid=host["uuid"], path="/host/capacity", timeout=5),
        HostAgentCallReply,
    )
    assert reply.result["cpuNum"] == 32

    await sim.set_alive("10.15.0.2", False)
    await admin.action(f"/hosts/{down['uuid']}/actions", "reconnectHost", {})
    refused = await bus.call(HostAgentCallMsg(host_uuid=down["uuid"], path="/host/capacity"))
    assert not refused.success
    assert refused.error is not None
    assert refused.error.code == "HOST.1002"

    listed = await bus.request(ListHostsMsg(cluster_uuids=[cluster["uuid"]]), ListHostsReply)
    assert [h.uuid for h in listed.hosts] == [host["uuid"]]
    everything = await bus.request(
        ListHostsMsg(zone_uuid=zone["uuid"], connected_only=False), ListHostsReply
    )
    assert {h.uuid for h in everything.hosts} == {host["uuid"], down["uuid"]}
