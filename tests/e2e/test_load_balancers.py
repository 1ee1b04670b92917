"""Load balancers on a VIP over REST, served by the virtual router (simulated hosts and
appliance): listeners and backend NICs reach the appliance; a refusal there leaves the
load balancer as it was; a destroyed VM's NICs, a deleted listener and a deleted VIP take
what depends on them along; a reconnected router gets them back; bad input changes
nothing."""

from __future__ import annotations

from typing import Any

import aiohttp

from simulator import Simulator
from tests.e2e.conftest import login_admin
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
from tests.support.datacenter import add_full_datacenter, wait_for
from tests.support.netsvc import (
    APPLIANCE_PORT,
    VR_SERVICES,
    appliance,
    attach_services,
    new_vip,
    public_l3,
    router_ip,
    router_offering,
    routers,
)
from zstackpy.core.ids import new_uuid
from zstackpy.node.node import ManagementNode

HOSTS = ["10.87.0.1"]


def held_backends(sim: Simulator, ip: str, lb_uuid: str) -> dict[int, list[str]]:
    """load-balancer port -> backend addresses, as the appliance at ``ip`` holds them."""
    lb = appliance(sim, ip)["loadBalancers"].get(lb_uuid)
    if lb is None:
        return {}
    return {
        li["loadBalancerPort"]: sorted(str(n["ip"]) for n in li["nics"]) for li in lb["listeners"]
    }


async def listener_nics(admin: ApiClient, uuid: str) -> list[str]:
    [listener] = await inventories(admin, "/load-balancers/listeners", f"uuid={uuid}")
    return sorted(r["vmNicUuid"] for r in listener["vmNicRefs"])


async def test_load_balancer_on_the_router(admin: ApiClient, sim: Simulator) -> None:
    dc = await add_full_datacenter(admin, "lb", HOSTS, storage=("nfs",))
    guest = dc["l3"]["uuid"]
    public = await public_l3(admin, dc, "lb-public")
    await router_offering(admin, dc, public)
    assert (await attach_services(admin, guest, VR_SERVICES)).status == 200
    web1, web2 = [await new_vm(admin, dc, name) for name in ("web1", "web2")]
    nic1, nic2 = web1["vmNics"][0], web2["vmNics"][0]
    [router] = await routers(admin)
    ip = router_ip(router, public["uuid"])

    vip = await new_vip(admin, public["uuid"], "lb-vip", requiredIp="16.16.16.50")
    lb = await admin.inventory("/load-balancers", {"name": "web", "vipUuid": vip["uuid"]})
    [shared] = await inventories(admin, "/vips", f"uuid={vip['uuid']}")
    assert shared["useFor"] == "LoadBalancer"
    # The VIP is the load balancer's alone.
    error_of(await admin.create("/eips", {"name": "e", "vipUuid": vip["uuid"]}), "VIP.1001")
    error_of(
        await admin.create("/load-balancers", {"name": "x", "vipUuid": vip["uuid"]}), "VIP.1001"
    )

    listener = await admin.inventory(
        f"/load-balancers/{lb['uuid']}/listeners",
        {"name": "http", "loadBalancerPort": 80, "instancePort": 8080},
    )
    assert (listener["protocol"], listener["instancePort"]) == ("tcp", 8080)
    error_of(
        await admin.create(
            f"/load-balancers/{lb['uuid']}/listeners", {"name": "again", "loadBalancerPort": 80}
        ),
        "LB.1001",
    )
    nics_path = f"/load-balancers/listeners/{listener['uuid']}/vm-instances/nics"
    # The router's own NIC cannot be a backend; a NIC that does not exist neither.
    router_guest = next(n for n in router["vmNics"] if n["l3NetworkUuid"] == guest)
    error_of(await admin.create(nics_path, {"vmNicUuids": [router_guest["uuid"]]}), "LB.1003")
    error_of(await admin.create(nics_path, {"vmNicUuids": ["0" * 32]}), "SYS.1003")
    assert await listener_nics(admin, listener["uuid"]) == []
    assert appliance(sim, ip)["loadBalancers"] == {}

    answer = await admin.create(nics_path, {"vmNicUuids": [nic1["uuid"], nic2["uuid"]]})
    assert answer.status == 200, answer.body
    assert await listener_nics(admin, listener["uuid"]) == sorted([nic1["uuid"], nic2["uuid"]])
    assert held_backends(sim, ip, lb["uuid"]) == {80: sorted([nic1["ip"], nic2["ip"]])}
    held = appliance(sim, ip)["loadBalancers"][lb["uuid"]]
    assert (held["vipIp"], held["listeners"][0]["instancePort"]) == ("16.16.16.50", 8080)

    # The appliance refuses a change: the load balancer stays as it was.
    sim.set_fault(ip, "/refreshlb", port=APPLIANCE_PORT, fail="haproxy reload failed", times=1)
    answer = await admin.delete(f"{nics_path}?vmNicUuids={nic2['uuid']}")
    assert answer.status != 200, answer.body
    assert "haproxy reload failed" in str(answer.error)
    assert await listener_nics(admin, listener["uuid"]) == sorted([nic1["uuid"], nic2["uuid"]])
    assert held_backends(sim, ip, lb["uuid"]) == {80: sorted([nic1["ip"], nic2["ip"]])}

    # A destroyed VM's NIC leaves its listeners, on the router too.
    await destroy_and_expunge(admin, web2["uuid"])
    assert await listener_nics(admin, listener["uuid"]) == [nic1["uuid"]]
    assert held_backends(sim, ip, lb["uuid"]) == {80: [nic1["ip"]]}

    # A reconnected router gets every load balancer back.
    answer = await admin.action(
        f"/vm-instances/appliances/virtual-routers/{router['uuid']}/actions",
        "reconnectVirtualRouter",
        {},
    )
    assert answer.status == 200, answer.body
    assert answer.body["inventory"]["status"] == "Connected"
    assert held_backends(sim, ip, lb["uuid"]) == {80: [nic1["ip"]]}

    # A second listener, then the first one deleted: the router holds what is left.
    udp = await admin.inventory(
        f"/load-balancers/{lb['uuid']}/listeners",
        {"name": "dns", "loadBalancerPort": 53, "protocol": "udp"},
    )
    answer = await admin.create(
        f"/load-balancers/listeners/{udp['uuid']}/vm-instances/nics", {"vmNicUuids": [nic1["uuid"]]}
    )
    assert answer.status == 200, answer.body
    assert held_backends(sim, ip, lb["uuid"]) == {80: [nic1["ip"]], 53: [nic1["ip"]]}
    assert (await admin.delete(f"/load-balancers/listeners/{listener['uuid']}")).status == 200
    assert held_backends(sim, ip, lb["uuid"]) == {53: [nic1["ip"]]}
    [left] = await inventories(admin, "/load-balancers", f"uuid={lb['uuid']}")
    assert [li["uuid"] for li in left["listeners"]] == [udp["uuid"]]

    # Deleting the VIP deletes its load balancer, off the router.
    assert (await admin.delete(f"/vips/{vip['uuid']}")).status == 200
    assert await inventories(admin, "/load-balancers") == []
    assert await inventories(admin, "/load-balancers/listeners") == []
    assert appliance(sim, ip)["loadBalancers"] == {}


async def test_router_goes_with_its_services_and_with_its_network(
    admin: ApiClient, sim: Simulator
) -> None:
    dc = await add_full_datacenter(admin, "vrdel", ["10.87.1.1"], storage=("nfs",))
    guest = dc["l3"]["uuid"]
    public = await public_l3(admin, dc, "vrdel-public")
    await router_offering(admin, dc, public)
    assert (await attach_services(admin, guest, VR_SERVICES)).status == 200
    vm: dict[str, Any] = await new_vm(admin, dc, "web")
    assert len(await routers(admin)) == 1

    # Nothing left for it to serve on the network: the router goes.
    answer = await admin.delete(f"/l3-networks/{guest}/network-services?service=LoadBalancer")
    assert answer.status == 200, answer.body
    assert len(await routers(admin)) == 1
    answer = await admin.delete(f"/l3-networks/{guest}/network-services?service=DHCP")
    assert answer.status == 200, answer.body
    for service in ("DNS", "SNAT", "Eip", "PortForwarding"):
        answer = await admin.delete(f"/l3-networks/{guest}/network-services?service={service}")
        assert answer.status == 200, answer.body

    async def no_router() -> bool:
        return await routers(admin) == []

    await wait_for(no_router, timeout=10.0)  # deleted once the detach has ended
    assert await inventories(admin, "/vm-instances", "type=ApplianceVm") == []

    # Back with the next VM; deleting the network deletes it (as it deletes the VM's NIC).
    assert (await attach_services(admin, guest, VR_SERVICES)).status == 200
    await destroy_and_expunge(admin, vm["uuid"])
    await new_vm(admin, dc, "web-again")
    assert len(await routers(admin)) == 1
    answer = await admin.delete(f"/l3-networks/{guest}?deleteMode=Enforcing")
    assert answer.status == 200, answer.body
    await wait_for(no_router, timeout=10.0)
    assert await inventories(admin, "/vm-instances/appliances") == []


async def test_a_router_and_a_load_balancer_across_two_nodes(
    two_nodes: tuple[ManagementNode, ManagementNode],
    shared_sim: Simulator,
    http: aiohttp.ClientSession,
) -> None:
    first, second = two_nodes
    admin = await login_admin(first, http)
    dc = await add_full_datacenter(admin, "lb2", ["10.87.2.1"], storage=("nfs",))
    guest = dc["l3"]["uuid"]
    public = await public_l3(admin, dc, "lb2-public")
    await router_offering(admin, dc, public)
    assert (await attach_services(admin, guest, VR_SERVICES)).status == 200
    ring = first.context.ring
    # A VM owned by the node that does not own the guest network (and so its router).
    vm_uuid = new_uuid()
    while ring.owner(vm_uuid) == ring.owner(guest):
        vm_uuid = new_uuid()
    web = await new_vm(admin, dc, "web", resourceUuid=vm_uuid)
    [router] = await routers(admin)
    assert router["status"] == "Connected"
    ip = router_ip(router, public["uuid"])
    assert list(appliance(shared_sim, ip)["dhcp"]) == [web["vmNics"][0]["mac"]]

    # A load balancer the second node owns, its listener changed through the first.
    lb_uuid = new_uuid()
    while ring.owner(lb_uuid) != second.uuid:
        lb_uuid = new_uuid()
    vip = await new_vip(admin, public["uuid"], "lb2-vip")
    await admin.inventory(
        "/load-balancers", {"name": "web", "vipUuid": vip["uuid"], "resourceUuid": lb_uuid}
    )
    listener = await admin.inventory(
        f"/load-balancers/{lb_uuid}/listeners", {"name": "http", "loadBalancerPort": 80}
    )
    answer = await admin.create(
        f"/load-balancers/listeners/{listener['uuid']}/vm-instances/nics",
        {"vmNicUuids": [web["vmNics"][0]["uuid"]]},
    )
    assert answer.status == 200, answer.body
    assert held_backends(shared_sim, ip, lb_uuid) == {80: [web["vmNics"][0]["ip"]]}


async def test_a_stopped_backend_expunged_leaves_the_router(
    admin: ApiClient, sim: Simulator
) -> None:
    dc = await add_full_datacenter(admin, "lbgone", ["10.87.3.1"], storage=("nfs",))
    guest = dc["l3"]["uuid"]
    public = await public_l3(admin, dc, "lbgone-public")
    await router_offering(admin, dc, public)
    assert (await attach_services(admin, guest, VR_SERVICES)).status == 200
    web1, web2 = [await new_vm(admin, dc, name) for name in ("web1", "web2")]
    nic1, nic2 = web1["vmNics"][0], web2["vmNics"][0]
    [router] = await routers(admin)
    ip = router_ip(router, public["uuid"])
    vip = await new_vip(admin, public["uuid"], "lbgone-vip")
    lb = await admin.inventory("/load-balancers", {"name": "web", "vipUuid": vip["uuid"]})
    listener = await admin.inventory(
        f"/load-balancers/{lb['uuid']}/listeners", {"name": "http", "loadBalancerPort": 80}
    )
    nics_path = f"/load-balancers/listeners/{listener['uuid']}/vm-instances/nics"
    answer = await admin.create(nics_path, {"vmNicUuids": [nic1["uuid"], nic2["uuid"]]})
    assert answer.status == 200, answer.body
    both = {80: sorted([nic1["ip"], nic2["ip"]])}

    # Stopped, then destroyed while stopped: still a backend (as a stop keeps it).
    await vm_ok(admin, web2["uuid"], "stopVmInstance")
    assert (await admin.delete(f"/vm-instances/{web2['uuid']}")).status == 200
    assert (await get_vm(admin, web2["uuid"]) or {}).get("state") == "Destroyed"
    assert await listener_nics(admin, listener["uuid"]) == sorted([nic1["uuid"], nic2["uuid"]])
    assert held_backends(sim, ip, lb["uuid"]) == both

    # The router refusing to let the NIC go fails the expunge: the VM stays Destroyed,
    # its NIC a backend there and in the database.
    sim.set_fault(ip, "/refreshlb", port=APPLIANCE_PORT, fail="haproxy reload failed", times=1)
    refused = await vm_action(admin, web2["uuid"], "expungeVmInstance")
    assert refused.status != 200
    assert "haproxy reload failed" in str(refused.body)
    assert (await get_vm(admin, web2["uuid"]) or {}).get("state") == "Destroyed"
    assert await listener_nics(admin, listener["uuid"]) == sorted([nic1["uuid"], nic2["uuid"]])
    assert held_backends(sim, ip, lb["uuid"]) == both

    # Expunged: off the listener and off the router, without waiting for its reboot.
    answer = await vm_action(admin, web2["uuid"], "expungeVmInstance")
    assert answer.status == 200, answer.body
    assert await get_vm(admin, web2["uuid"]) is None
    assert await listener_nics(admin, listener["uuid"]) == [nic1["uuid"]]
    assert held_backends(sim, ip, lb["uuid"]) == {80: [nic1["ip"]]}

    # The last backend, stopped and expunged: the load balancer leaves the router.
    await vm_ok(admin, web1["uuid"], "stopVmInstance")
    await destroy_and_expunge(admin, web1["uuid"])
    assert await listener_nics(admin, listener["uuid"]) == []
    assert appliance(sim, ip)["loadBalancers"] == {}
    assert (await admin.delete(f"/load-balancers/{lb['uuid']}")).status == 200
