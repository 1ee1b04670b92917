"""L2 and L3 networks end to end over REST against the in-process simulator: bridges on
the simulated hosts, duplicate wires refused, ranges by CIDR, DNS, overlapping ranges
refused with nothing changed, deletes refused while addresses are in use, queries with
joins, zone cascades, and the host allocator's network filter."""

from __future__ import annotations

from typing import Any

from simulator import Simulator
from tests.support.api_client import ApiClient
from tests.support.datacenter import add_cluster, add_kvm_host, add_zone
from zstackpy.node.node import ManagementNode
from zstackpy.services.host.messages import AllocateHostMsg, AllocateHostReply
from zstackpy.services.network.messages import (
    AllocateIpMsg,
    AllocateIpReply,
    GetL3NetworksMsg,
    GetL3NetworksReply,
    ReleaseIpMsg,
)

GIB = 1 << 30


async def count(admin: ApiClient, path: str, *conditions: str) -> int:
    answer = await admin.query(path, *conditions, count="true")
    assert answer.status == 200, answer.body
    total: int = answer.body["total"]
    return total


async def uuids(admin: ApiClient, path: str, *conditions: str) -> list[str]:
    answer = await admin.query(path, *conditions)
    assert answer.status == 200, answer.body
    return [item["uuid"] for item in answer.body["inventories"]]


async def novlan(admin: ApiClient, zone_uuid: str, iface: str = "eth0", **extra: Any) -> Any:
    body = {"name": f"l2-{iface}", "zoneUuid": zone_uuid, "physicalInterface": iface, **extra}
    return await admin.inventory("/l2-networks/no-vlan", body)


async def vlan(admin: ApiClient, zone_uuid: str, vlan_id: int, iface: str = "eth1") -> Any:
    body = {
        "name": f"l2-{iface}-{vlan_id}",
        "zoneUuid": zone_uuid,
        "physicalInterface": iface,
        "vlan": vlan_id,
    }
    return await admin.inventory("/l2-networks/vlan", body)


async def attach(admin: ApiClient, l2_uuid: str, cluster_uuid: str) -> Any:
    return await admin.finish(
        await admin.request("POST", f"/l2-networks/{l2_uuid}/clusters/{cluster_uuid}")
    )


async def l3_on(admin: ApiClient, l2_uuid: str, name: str = "l3", **extra: Any) -> Any:
    return await admin.inventory("/l3-networks", {"name": name, "l2NetworkUuid": l2_uuid, **extra})


async def range_by_cidr(admin: ApiClient, l3_uuid: str, cidr: str, **extra: Any) -> Any:
    answer = await admin.create(
        f"/l3-networks/{l3_uuid}/ip-ranges/by-cidr", {"name": "r", "networkCidr": cidr, **extra}
    )
    assert answer.status == 200, answer.body
    return answer.body


async def allocate(node: ManagementNode, l3_uuid: str, **fields: Any) -> Any:
    reply = await node.context.bus.request(
        AllocateIpMsg(l3_network_uuid=l3_uuid, **fields), AllocateIpReply
    )
    return reply.ip


# ----- L2: bridges, duplicates ------------------------------------------------------------


async def test_attaching_l2_networks_creates_their_bridges_on_every_host(
    admin: ApiClient, node: ManagementNode, sim: Simulator
) -> None:
    zone = await add_zone(admin, "z")
    cluster = await add_cluster(admin, zone["uuid"], "c")
    for ip in ("10.0.0.1", "10.0.0.2"):
        await add_kvm_host(admin, cluster["uuid"], ip)
    flat = await novlan(admin, zone["uuid"], "eth0")
    tagged = await vlan(admin, zone["uuid"], 100, "eth1")
    assert (flat["type"], flat["virtualNetworkId"], flat["vSwitchType"]) == (
        "L2NoVlanNetwork",
        0,
        "LinuxBridge",
    )
    assert "vlan" not in flat
    assert (tagged["type"], tagged["vlan"], tagged["virtualNetworkId"]) == (
        "L2VlanNetwork",
        100,
        100,
    )

    for l2 in (flat, tagged):
        attached = await attach(admin, l2["uuid"], cluster["uuid"])
        assert attached.status == 200, attached.body
        assert attached.body["inventory"]["attachedClusterUuids"] == [cluster["uuid"]]
    for ip in ("10.0.0.1", "10.0.0.2"):
        bridges = sim.machine(ip).bridges or {}
        assert bridges["br_eth0"]["l2NetworkUuid"] == flat["uuid"]
        assert bridges["br_eth0"]["vlan"] is None
        assert bridges["br_eth1_100"] == {
            "physicalInterfaceName": "eth1",
            "l2NetworkUuid": tagged["uuid"],
            "vlan": 100,
        }

    # A host joining the cluster later gets the cluster's bridges when it connects.
    await add_kvm_host(admin, cluster["uuid"], "10.0.0.3")
    assert set(sim.machine("10.0.0.3").bridges or {}) == {"br_eth0", "br_eth1_100"}

    again = await attach(admin, flat["uuid"], cluster["uuid"])
    assert again.error["code"] == "L2.1003"

    # Queries: the nested list, the subtype API, the join edges.
    assert set(await uuids(admin, "/l2-networks", f"attachedClusterUuids={cluster['uuid']}")) == {
        flat["uuid"],
        tagged["uuid"],
    }
    vlans = await admin.query("/l2-networks/vlan")
    assert [(n["uuid"], n["vlan"]) for n in vlans.body["inventories"]] == [(tagged["uuid"], 100)]
    assert await uuids(admin, "/l2-networks", "vlan=100") == [tagged["uuid"]]
    assert await count(admin, "/l2-networks", "cluster.name=c") == 2
    assert await count(admin, "/l2-networks", "zone.name=z") == 2
    assert await uuids(admin, "/clusters", "l2Network.vlan=100") == [cluster["uuid"]]
    assert await uuids(admin, "/clusters", "l2VlanNetwork.physicalInterface=eth1") == [
        cluster["uuid"]
    ]
    assert await uuids(admin, "/zones", "l2Network.physicalInterface=eth1") == [zone["uuid"]]

    detached = await admin.delete(f"/l2-networks/{tagged['uuid']}/clusters/{cluster['uuid']}")
    assert detached.status == 200, detached.body
    assert detached.body["inventory"]["attachedClusterUuids"] == []
    not_attached = await admin.delete(f"/l2-networks/{tagged['uuid']}/clusters/{cluster['uuid']}")
    assert not_attached.error["code"] == "L2.1004"
    assert await uuids(admin, "/l2-networks", f"attachedClusterUuids={cluster['uuid']}") == [
        flat["uuid"]
    ]


async def test_a_host_that_cannot_make_the_bridge_fails_the_attach_and_nothing_is_attached(
    admin: ApiClient, sim: Simulator
) -> None:
    zone = await add_zone(admin, "z")
    cluster = await add_cluster(admin, zone["uuid"], "c")
    await add_kvm_host(admin, cluster["uuid"], "10.1.0.1")
    busy = await add_kvm_host(admin, cluster["uuid"], "10.1.0.2")
    l2 = await vlan(admin, zone["uuid"], 200, "eth0")
    sim.set_fault("10.1.0.2", "/network/l2vlan/createbridge", fail="device busy")
    failed = await attach(admin, l2["uuid"], cluster["uuid"])
    assert failed.error["code"] == "L2.1005"
    assert failed.error["details"]["host_uuid"] == busy["uuid"]
    assert failed.error["cause"]["details"]["error"] == "device busy"
    assert await count(admin, "/l2-networks", f"attachedClusterUuids={cluster['uuid']}") == 0
    sim.clear_faults("10.1.0.2")
    assert (await attach(admin, l2["uuid"], cluster["uuid"])).status == 200
    assert "br_eth0_200" in (sim.machine("10.1.0.2").bridges or {})

    # A host whose bridge fails cannot connect: it could not serve its cluster's networks.
    sim.declare("10.1.0.3")
    sim.set_fault("10.1.0.3", "/network/l2vlan/createbridge", fail="no such device")
    refused = await admin.create(
        "/hosts/kvm",
        {
            "name": "h3",
            "managementIp": "10.1.0.3",
            "clusterUuid": cluster["uuid"],
            "username": "root",
            "password": "password",
        },
    )
    assert refused.error["code"] == "L2.1005"
    assert refused.error["details"]["bridge"] == "br_eth0_200"
    assert await count(admin, "/hosts", "managementIp=10.1.0.3") == 0


async def test_two_networks_on_one_wire_are_refused_and_nothing_is_created(
    admin: ApiClient,
) -> None:
    zone = await add_zone(admin, "z")
    other = await add_zone(admin, "other")
    first = await vlan(admin, zone["uuid"], 100, "eth0")
    body = {"name": "dup", "zoneUuid": zone["uuid"], "physicalInterface": "eth0", "vlan": 100}
    dup = await admin.create("/l2-networks/vlan", body)
    assert (dup.status, dup.error["code"]) == (409, "L2.1001")
    assert first["uuid"] in dup.error["description"]
    await novlan(admin, zone["uuid"], "eth0")
    flat_dup = await admin.create(
        "/l2-networks/no-vlan", {"name": "d", "zoneUuid": zone["uuid"], "physicalInterface": "eth0"}
    )
    assert flat_dup.error["code"] == "L2.1001"
    for bad in (0, 4095):
        out_of_range = await admin.create("/l2-networks/vlan", {**body, "vlan": bad})
        assert out_of_range.status == 400, out_of_range.body
        assert out_of_range.error["code"] == "SYS.1007"
    missing_zone = await admin.create("/l2-networks/vlan", {**body, "zoneUuid": "f" * 32})
    assert missing_zone.error["code"] == "SYS.1003"
    assert await count(admin, "/l2-networks") == 2
    # The same wire in another zone is another wire.
    await vlan(admin, other["uuid"], 100, "eth0")
    assert await count(admin, "/l2-networks") == 3


async def test_attach_to_a_cluster_of_another_zone_is_refused(admin: ApiClient) -> None:
    zone = await add_zone(admin, "z")
    other = await add_zone(admin, "other")
    cluster = await add_cluster(admin, other["uuid"], "c")
    l2 = await novlan(admin, zone["uuid"])
    refused = await attach(admin, l2["uuid"], cluster["uuid"])
    assert refused.error["code"] == "L2.1002"
    assert await count(admin, "/l2-networks", f"attachedClusterUuids={cluster['uuid']}") == 0


# ----- L3: ranges, DNS, queries -----------------------------------------------------------


async def test_l3_with_a_cidr_range_and_dns_servers(admin: ApiClient) -> None:
    zone = await add_zone(admin, "z")
    l2 = await vlan(admin, zone["uuid"], 100)
    l3 = await l3_on(admin, l2["uuid"], "private", dnsDomain="corp.example")
    assert (l3["zoneUuid"], l3["state"], l3["category"], l3["system"]) == (
        zone["uuid"],
        "Enabled",
        "Private",
        False,
    )
    assert (l3["type"], l3["ipVersion"], l3["enableIPAM"], l3["dnsDomain"]) == (
        "L3BasicNetwork",
        4,
        True,
        "corp.example",
    )
    added = await range_by_cidr(admin, l3["uuid"], "192.168.100.0/24")
    r = added["inventory"]
    assert added["inventories"] == [r]
    assert (r["startIp"], r["endIp"], r["gateway"], r["netmask"]) == (
        "192.168.100.2",
        "192.168.100.254",
        "192.168.100.1",
        "255.255.255.0",
    )
    assert (r["networkCidr"], r["prefixLen"], r["ipRangeType"]) == (
        "192.168.100.0/24",
        24,
        "Normal",
    )

    for dns in ("8.8.8.8", "1.1.1.1"):
        answer = await admin.create(f"/l3-networks/{l3['uuid']}/dns", {"dns": dns})
        assert answer.status == 200, answer.body
    assert answer.body["inventory"]["dns"] == ["8.8.8.8", "1.1.1.1"]
    dup = await admin.create(f"/l3-networks/{l3['uuid']}/dns", {"dns": "8.8.8.8"})
    assert dup.error["code"] == "L3.1004"
    bad = await admin.create(f"/l3-networks/{l3['uuid']}/dns", {"dns": "dns.google"})
    assert bad.status == 400

    read = (await admin.request("GET", f"/l3-networks/{l3['uuid']}")).body["inventories"][0]
    assert read["dns"] == ["8.8.8.8", "1.1.1.1"]
    assert [x["uuid"] for x in read["ipRanges"]] == [r["uuid"]]
    assert read["networkServices"] == []

    # Joins and nested fields, as ZStack's clients write them.
    assert await uuids(admin, "/l3-networks", "l2Network.vlan=100") == [l3["uuid"]]
    assert await uuids(admin, "/l3-networks", "dns=1.1.1.1") == [l3["uuid"]]
    assert await uuids(admin, "/l3-networks", "dns=9.9.9.9") == []
    assert await uuids(admin, "/l3-networks", "ipRanges.startIp=192.168.100.2") == [l3["uuid"]]
    assert await uuids(admin, "/l3-networks/ip-ranges", f"l3NetworkUuid={l3['uuid']}") == [
        r["uuid"]
    ]
    assert await uuids(admin, "/l3-networks/ip-ranges", "l3Network.name=private") == [r["uuid"]]
    assert await uuids(admin, "/zones", "l3Network.l2Network.vlan=100") == [zone["uuid"]]
    assert await uuids(admin, "/l2-networks", "l3Network.name=private") == [l2["uuid"]]

    removed = await admin.delete(f"/l3-networks/{l3['uuid']}/dns/8.8.8.8")
    assert removed.status == 200, removed.body
    assert removed.body["inventory"]["dns"] == ["1.1.1.1"]

    updated = await admin.action(
        f"/l3-networks/{l3['uuid']}/actions",
        "updateL3Network",
        {"name": "renamed", "category": "Public", "system": True},
    )
    assert updated.status == 200, updated.body
    assert (updated.body["inventory"]["name"], updated.body["inventory"]["system"]) == (
        "renamed",
        True,
    )
    bad_combo = await admin.action(
        f"/l3-networks/{l3['uuid']}/actions", "updateL3Network", {"category": "Private"}
    )
    assert bad_combo.status == 400, bad_combo.body
    disabled = await admin.action(
        f"/l3-networks/{l3['uuid']}/actions", "changeL3NetworkState", {"stateEvent": "disable"}
    )
    assert disabled.body["inventory"]["state"] == "Disabled"


async def test_overlapping_and_malformed_ranges_are_refused_and_change_nothing(
    admin: ApiClient,
) -> None:
    zone = await add_zone(admin, "z")
    l2 = await novlan(admin, zone["uuid"])
    a = await l3_on(admin, l2["uuid"], "a")
    b = await l3_on(admin, l2["uuid"], "b")
    first = await admin.inventory(
        f"/l3-networks/{a['uuid']}/ip-ranges",
        {
            "name": "first",
            "startIp": "10.0.0.10",
            "endIp": "10.0.0.100",
            "netmask": "255.255.255.0",
            "gateway": "10.0.0.1",
        },
    )
    overlap = await admin.create(
        f"/l3-networks/{b['uuid']}/ip-ranges",
        {
            "name": "second",
            "startIp": "10.0.0.50",
            "endIp": "10.0.0.150",
            "netmask": "255.255.255.0",
            "gateway": "10.0.0.1",
        },
    )
    assert (overlap.status, overlap.error["code"]) == (409, "L3.1001")
    assert first["uuid"] in overlap.error["description"]
    assert overlap.error["details"]["overlapping_range_uuid"] == first["uuid"]
    by_cidr = await admin.create(
        f"/l3-networks/{b['uuid']}/ip-ranges/by-cidr", {"name": "c", "networkCidr": "10.0.0.0/24"}
    )
    assert by_cidr.error["code"] == "L3.1001"

    def bounds(start: str, end: str, gateway: str = "10.9.0.1") -> dict[str, str]:
        return {
            "name": "x",
            "startIp": start,
            "endIp": end,
            "netmask": "255.255.255.0",
            "gateway": gateway,
        }

    for body in (
        bounds("10.9.0.20", "10.9.0.10"),  # start after end
        bounds("10.9.0.10", "10.9.1.10"),  # two subnets
        bounds("10.9.0.10", "10.9.0.20", gateway="10.9.0.15"),  # gateway inside
        bounds("10.9.0.10", "10.9.0.20", gateway="10.8.0.1"),  # gateway elsewhere
        bounds("10.9.0.0", "10.9.0.20"),  # the network address
        bounds("10.9.0.300", "10.9.0.20"),  # not an address
        {**bounds("10.9.0.10", "10.9.0.20"), "netmask": "255.0.255.0"},
    ):
        answer = await admin.create(f"/l3-networks/{b['uuid']}/ip-ranges", body)
        assert answer.status == 400, (body, answer.body)
        assert answer.error["code"] == "SYS.1007"
    other_subnet = await admin.create(
        f"/l3-networks/{a['uuid']}/ip-ranges", bounds("10.9.0.10", "10.9.0.20")
    )
    assert other_subnet.status == 400, other_subnet.body
    assert await count(admin, "/l3-networks/ip-ranges") == 1

    # Another L2 is another wire: the same addresses are fine there.
    l2b = await novlan(admin, zone["uuid"], "eth1")
    c = await l3_on(admin, l2b["uuid"], "c")
    await range_by_cidr(admin, c["uuid"], "10.0.0.0/24")
    # A gateway in the middle splits the network in two ranges.
    d = await l3_on(admin, (await novlan(admin, zone["uuid"], "eth2"))["uuid"], "d")
    split = await range_by_cidr(admin, d["uuid"], "172.16.0.0/29", gateway="172.16.0.3")
    assert [(x["startIp"], x["endIp"]) for x in split["inventories"]] == [
        ("172.16.0.1", "172.16.0.2"),
        ("172.16.0.4", "172.16.0.6"),
    ]
    assert await count(admin, "/l3-networks/ip-ranges") == 4


async def test_ip_address_apis(admin: ApiClient, node: ManagementNode) -> None:
    zone = await add_zone(admin, "z")
    l3 = await l3_on(admin, (await novlan(admin, zone["uuid"]))["uuid"])
    r = (await range_by_cidr(admin, l3["uuid"], "10.5.0.0/28"))["inventory"]
    used = await allocate(node, l3["uuid"])
    assert used.ip == "10.5.0.2"
    free = await admin.request(
        "GET", "/l3-networks/ip/free", params={"l3NetworkUuid": l3["uuid"], "limit": "3"}
    )
    assert free.status == 200, free.body
    assert free.body["inventories"] == [
        {"ipRangeUuid": r["uuid"], "ip": ip, "netmask": "255.255.255.240", "gateway": "10.5.0.1"}
        for ip in ("10.5.0.3", "10.5.0.4", "10.5.0.5")
    ]
    base = f"/l3-networks/{l3['uuid']}/ip"
    checks = {
        ip: (await admin.request("GET", f"{base}/{ip}/availability")).body
        for ip in ("10.5.0.2", "10.5.0.3", "10.5.0.1", "10.6.0.1")
    }
    assert checks["10.5.0.3"] == {"available": True}
    assert checks["10.5.0.2"]["available"] is False
    assert "in use" in checks["10.5.0.2"]["reason"]
    assert "gateway" in checks["10.5.0.1"]["reason"]
    assert checks["10.6.0.1"]["available"] is False
    capacity = await admin.request("GET", "/ip-capacity", params={"l3NetworkUuids": l3["uuid"]})
    assert capacity.status == 200, capacity.body
    assert (
        capacity.body["totalCapacity"],
        capacity.body["usedIpAddressNumber"],
        capacity.body["availableCapacity"],
    ) == (13, 1, 12)
    assert capacity.body["capacityData"][0]["resourceUuid"] == l3["uuid"]
    by_zone = await admin.request("GET", "/ip-capacity", params={"zoneUuids": zone["uuid"]})
    assert by_zone.body["ipv4AvailableCapacity"] == 12
    assert (await admin.query("/l3-networks/ip-address", f"l3NetworkUuid={l3['uuid']}")).body[
        "inventories"
    ][0]["ip"] == "10.5.0.2"


# ----- deletes and cascades ---------------------------------------------------------------


async def test_networks_with_addresses_in_use_refuse_to_go(
    admin: ApiClient, node: ManagementNode
) -> None:
    zone = await add_zone(admin, "z")
    l2 = await novlan(admin, zone["uuid"])
    l3 = await l3_on(admin, l2["uuid"])
    r = (await range_by_cidr(admin, l3["uuid"], "10.7.0.0/24"))["inventory"]
    # An address not held by a VM NIC (a VIP, say): nothing would release it, so even a
    # parent's cascade refuses. (VM NICs' addresses are the VM cascade's: it detaches them.)
    used = await allocate(node, l3["uuid"], used_for="Vip")

    refused = await admin.delete(f"/l3-networks/{l3['uuid']}")
    assert (refused.status, refused.error["code"]) == (409, "L3.1002")
    assert "10.7.0.2" in refused.error["description"]
    range_refused = await admin.delete(f"/l3-networks/ip-ranges/{r['uuid']}")
    assert range_refused.error["code"] == "L3.1002"
    l2_refused = await admin.delete(f"/l2-networks/{l2['uuid']}")
    assert l2_refused.error["code"] == "SYS.1004"
    assert l2_refused.error["cause"]["code"] == "L3.1002"
    zone_refused = await admin.delete(f"/zones/{zone['uuid']}")
    assert zone_refused.error["code"] == "SYS.1004"
    for path in ("/zones", "/l2-networks", "/l3-networks", "/l3-networks/ip-ranges"):
        assert await count(admin, path) == 1, path

    released = await node.context.bus.call(
        ReleaseIpMsg(l3_network_uuid=l3["uuid"], used_ip_uuid=used.uuid)
    )
    assert released.success
    assert (await admin.delete(f"/l3-networks/ip-ranges/{r['uuid']}")).status == 200
    assert (await admin.delete(f"/l3-networks/{l3['uuid']}")).status == 200
    assert await count(admin, "/l3-networks") == 0
    assert (await admin.delete(f"/l2-networks/{l2['uuid']}")).status == 200
    assert await count(admin, "/l2-networks") == 0


async def test_deleting_a_zone_deletes_its_networks(admin: ApiClient, node: ManagementNode) -> None:
    zone = await add_zone(admin, "z")
    cluster = await add_cluster(admin, zone["uuid"], "c")
    await add_kvm_host(admin, cluster["uuid"], "10.2.0.1")
    l2 = await vlan(admin, zone["uuid"], 300)
    assert (await attach(admin, l2["uuid"], cluster["uuid"])).status == 200
    l3 = await l3_on(admin, l2["uuid"])
    await range_by_cidr(admin, l3["uuid"], "10.8.0.0/24")
    assert (await admin.create(f"/l3-networks/{l3['uuid']}/dns", {"dns": "8.8.4.4"})).status == 200
    await allocate(node, l3["uuid"])
    await admin.inventory(
        "/user-tags", {"resourceType": "L3NetworkVO", "resourceUuid": l3["uuid"], "tag": "t"}
    )

    permissive = await admin.delete(f"/zones/{zone['uuid']}")
    assert permissive.error["code"] == "SYS.1004"  # an address is in use
    enforced = await admin.delete(f"/zones/{zone['uuid']}", deleteMode="Enforcing")
    assert enforced.status == 200, enforced.body
    for path in (
        "/zones",
        "/clusters",
        "/hosts",
        "/l2-networks",
        "/l3-networks",
        "/l3-networks/ip-ranges",
        "/l3-networks/ip-address",
        "/user-tags",
    ):
        assert await count(admin, path) == 0, path


async def test_deleting_a_cluster_detaches_its_networks(admin: ApiClient) -> None:
    zone = await add_zone(admin, "z")
    cluster = await add_cluster(admin, zone["uuid"], "c")
    l2 = await novlan(admin, zone["uuid"])
    assert (await attach(admin, l2["uuid"], cluster["uuid"])).status == 200
    assert (await admin.delete(f"/clusters/{cluster['uuid']}")).status == 200
    read = (await admin.request("GET", f"/l2-networks/{l2['uuid']}")).body["inventories"][0]
    assert read["attachedClusterUuids"] == []


# ----- what other services read -----------------------------------------------------------


async def test_vm_placement_follows_the_l2_attachments(
    admin: ApiClient, node: ManagementNode
) -> None:
    zone = await add_zone(admin, "z")
    wired = await add_cluster(admin, zone["uuid"], "wired")
    unwired = await add_cluster(admin, zone["uuid"], "unwired")
    host = await add_kvm_host(admin, wired["uuid"], "10.3.0.1")
    await add_kvm_host(admin, unwired["uuid"], "10.3.0.2")
    l2 = await vlan(admin, zone["uuid"], 42)
    assert (await attach(admin, l2["uuid"], wired["uuid"])).status == 200
    l3 = await l3_on(admin, l2["uuid"])

    reply = await node.context.bus.request(
        AllocateHostMsg(cpu_num=1, memory_size=GIB, l3_network_uuids=[l3["uuid"]], dry_run=True),
        AllocateHostReply,
    )
    assert [c.uuid for c in reply.candidates] == [host["uuid"]]

    lonely = await l3_on(admin, (await novlan(admin, zone["uuid"], "eth0"))["uuid"], "lonely")
    nowhere = await node.context.bus.call(
        AllocateHostMsg(cpu_num=1, memory_size=GIB, l3_network_uuids=[lonely["uuid"]], dry_run=True)
    )
    assert not nowhere.success
    assert nowhere.error is not None
    assert nowhere.error.code == "HOST.1101"

    described = await node.context.bus.request(
        GetL3NetworksMsg(l3_network_uuids=[l3["uuid"]]), GetL3NetworksReply
    )
    summary = described.networks[0]
    assert (summary.bridge_name, summary.vlan, summary.attached_cluster_uuids) == (
        "br_eth1_42",
        42,
        [wired["uuid"]],
    )
