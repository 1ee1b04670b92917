"""A normal account's network-service requests may name only what it may use: another
account's NICs, VIPs, security groups and L3 networks answer as if they did not exist."""

from __future__ import annotations

from simulator import Simulator
from tests.e2e.test_vm_lifecycle import destroy_and_expunge, error_of, inventories, new_vm
from tests.support.api_client import ApiClient, sha512
from tests.support.datacenter import add_full_datacenter
from tests.support.netsvc import attach_services, new_vip, public_l3

HOSTS = ["10.95.0.1"]


async def test_a_tenant_cannot_reach_the_admins_nics_vips_or_networks(
    admin: ApiClient, sim: Simulator
) -> None:
    dc = await add_full_datacenter(admin, "acl", HOSTS, storage=("nfs",))
    l3 = dc["l3"]["uuid"]
    services = {"Flat": ["Eip", "PortForwarding"], "SecurityGroup": ["SecurityGroup"]}
    assert (await attach_services(admin, l3, services)).status == 200
    public = await public_l3(admin, dc, "acl-public")
    admins_vip = await new_vip(admin, public["uuid"], "admins")
    admins_sg = await admin.inventory("/security-groups", {"name": "admins"})
    vm = await new_vm(admin, dc, "admins-vm")
    nic = vm["vmNics"][0]["uuid"]

    created = await admin.create("/accounts", {"name": "tenant", "password": sha512("t-pw")})
    assert created.status == 200, created.body
    tenant = ApiClient(admin.base, admin.http)
    await tenant.login("tenant", "t-pw")

    error_of(await tenant.create("/eips", {"name": "e", "vipUuid": admins_vip["uuid"]}), "SYS.1003")
    pf = {"name": "p", "vipUuid": admins_vip["uuid"], "vipPortStart": 80, "protocolType": "TCP"}
    error_of(await tenant.create("/port-forwarding", pf), "SYS.1003")
    error_of(
        await tenant.create("/vips", {"name": "v", "l3NetworkUuid": public["uuid"]}), "SYS.1003"
    )
    mine = await tenant.inventory("/security-groups", {"name": "mine"})
    error_of(
        await tenant.create(f"/security-groups/{mine['uuid']}/l3-networks/{l3}", {}), "SYS.1003"
    )
    error_of(
        await tenant.create(
            f"/security-groups/{mine['uuid']}/vm-instances/nics", {"vmNicUuids": [nic]}
        ),
        "SYS.1003",
    )
    rule = {"type": "Ingress", "protocol": "ALL", "remoteSecurityGroupUuid": admins_sg["uuid"]}
    error_of(
        await tenant.create(f"/security-groups/{mine['uuid']}/rules", {"rules": [rule]}), "SYS.1003"
    )
    # Nothing was made or taken, and the tenant sees only its own group.
    assert await inventories(admin, "/eips") == []
    assert await inventories(admin, "/port-forwarding") == []
    [vip] = await inventories(admin, "/vips", f"uuid={admins_vip['uuid']}")
    assert vip.get("useFor") is None
    assert [g["uuid"] for g in await inventories(tenant, "/security-groups")] == [mine["uuid"]]

    # The candidate queries about the admin's NIC or rule answer as if they did not exist.
    error_of(await tenant.request("GET", f"/vm-instances/nics/{nic}/candidate-eips"), "SYS.1003")
    rule = await admin.inventory("/port-forwarding", pf)
    candidates = f"/port-forwarding/{rule['uuid']}/vm-instances/candidate-nics"
    error_of(await tenant.request("GET", candidates), "SYS.1003")
    assert (await admin.delete(f"/port-forwarding/{rule['uuid']}")).status == 200
    await destroy_and_expunge(admin, vm["uuid"])
