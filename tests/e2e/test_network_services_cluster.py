"""Network services across two management nodes (one process, one simulator): a security
group owned by one node pushes its rules to a host another node owns, and an EIP created
through one node is NATed on a host the other drives."""

from __future__ import annotations

import aiohttp

from simulator import Simulator
from tests.e2e.conftest import login_admin
from tests.e2e.test_vm_lifecycle import destroy_and_expunge, new_vm
from tests.support.datacenter import add_full_datacenter
from tests.support.netsvc import attach_services, host_nat, host_rules
from zstackpy.core.ids import new_uuid
from zstackpy.node.node import ManagementNode

HOSTS = ["10.90.0.1"]


async def test_rules_and_nat_reach_a_host_another_node_owns(
    two_nodes: tuple[ManagementNode, ManagementNode],
    shared_sim: Simulator,
    http: aiohttp.ClientSession,
) -> None:
    first, _ = two_nodes
    admin = await login_admin(first, http)
    dc = await add_full_datacenter(admin, "ns2", HOSTS, storage=("nfs",))
    l3 = dc["l3"]["uuid"]
    ring = first.context.ring
    host_owner = ring.owner(dc["hosts"][0]["uuid"])
    # Resources owned by the node that does not drive the host.
    sg_uuid = new_uuid()
    while ring.owner(sg_uuid) == host_owner:
        sg_uuid = new_uuid()
    eip_uuid = new_uuid()
    while ring.owner(eip_uuid) == host_owner:
        eip_uuid = new_uuid()

    services = {"Flat": ["DHCP", "Eip"], "SecurityGroup": ["SecurityGroup"]}
    assert (await attach_services(admin, l3, services)).status == 200
    sg = await admin.inventory("/security-groups", {"name": "x", "resourceUuid": sg_uuid})
    assert (await admin.create(f"/security-groups/{sg_uuid}/l3-networks/{l3}", {})).status == 200
    rule = {"type": "Ingress", "protocol": "TCP", "startPort": 80, "endPort": 80}
    assert (
        await admin.create(f"/security-groups/{sg_uuid}/rules", {"rules": [rule]})
    ).status == 200
    vm = await new_vm(admin, dc, "x1")
    nic = vm["vmNics"][0]
    answer = await admin.create(
        f"/security-groups/{sg['uuid']}/vm-instances/nics", {"vmNicUuids": [nic["uuid"]]}
    )
    assert answer.status == 200, answer.body
    assert host_rules(shared_sim, HOSTS[0]) == {
        nic["uuid"]: [("Ingress", "TCP", 80, 80, "0.0.0.0/0")]
    }

    public = await admin.inventory(
        "/l3-networks", {"name": "pub", "l2NetworkUuid": dc["l2"]["uuid"], "category": "Public"}
    )
    await admin.inventory(
        f"/l3-networks/{public['uuid']}/ip-ranges/by-cidr",
        {"name": "pub-range", "networkCidr": "16.16.17.0/24"},
    )
    vip = await admin.inventory("/vips", {"name": "v", "l3NetworkUuid": public["uuid"]})
    await admin.inventory(
        "/eips",
        {"name": "e", "vipUuid": vip["uuid"], "vmNicUuid": nic["uuid"], "resourceUuid": eip_uuid},
    )
    assert host_nat(shared_sim, HOSTS[0]) == {vip["ip"]: nic["ip"]}
    await destroy_and_expunge(admin, vm["uuid"])
    assert host_rules(shared_sim, HOSTS[0]) == {}
    assert host_nat(shared_sim, HOSTS[0]) == {}
