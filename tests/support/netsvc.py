"""Network services over REST for the e2e tests: providers, attaching their types to an
L3 network, and what a simulated host holds (DHCP entries, security-group rules, NAT)."""

from __future__ import annotations

from typing import Any

from simulator import Simulator
from tests.support.api_client import ApiClient


async def provider_uuid(admin: ApiClient, provider_type: str) -> str:
    answer = await admin.query("/network-services/providers", f"type={provider_type}")
    assert answer.status == 200, answer.body
    [provider] = answer.body["inventories"]
    return str(provider["uuid"])


async def attach_services(admin: ApiClient, l3_uuid: str, services: dict[str, list[str]]) -> Any:
    """``services``: provider type -> service types."""
    by_uuid = {await provider_uuid(admin, t): types for t, types in services.items()}
    return await admin.create(
        f"/l3-networks/{l3_uuid}/network-services", {"networkServices": by_uuid}
    )


def host_network(sim: Simulator, ip: str) -> dict[str, Any]:
    """What the simulated host at ``ip`` holds of network services."""
    network = sim.machine(ip).network
    return network.view() if network is not None else {}


def host_rules(sim: Simulator, ip: str) -> dict[str, list[tuple[str, str, int, int, Any]]]:
    """nic uuid -> its rules as (type, protocol, start, end, cidr or remote group)."""
    held = host_network(sim, ip).get("securityGroupRules", {})
    return {
        nic: [
            (
                r["type"],
                r["protocol"],
                r["startPort"],
                r["endPort"],
                r["allowedCidr"] or r["remoteGroupUuid"],
            )
            for r in to["rules"]
        ]
        for nic, to in held.items()
    }


def host_nat(sim: Simulator, ip: str) -> dict[str, str | None]:
    """vip -> the guest address it is NATed to on the host at ``ip``."""
    return {vip: e.get("nicIp") for vip, e in host_network(sim, ip).get("nat", {}).items()}


def host_forwards(sim: Simulator, ip: str) -> dict[str, tuple[str | None, int, int]]:
    """Port forwards on the host: "vip:protocol:start-end" -> (guest address, private
    start, private end)."""
    held = host_network(sim, ip).get("portForwarding", {})
    return {
        key: (r.get("nicIp"), r["privatePortStart"], r["privatePortEnd"]) for key, r in held.items()
    }


async def public_l3(admin: ApiClient, dc: dict[str, Any], name: str) -> dict[str, Any]:
    """A Public L3 network on the data center's L2, with the addresses 16.16.16.0/24."""
    l3 = await admin.inventory(
        "/l3-networks",
        {"name": name, "l2NetworkUuid": dc["l2"]["uuid"], "category": "Public"},
    )
    await admin.inventory(
        f"/l3-networks/{l3['uuid']}/ip-ranges/by-cidr",
        {"name": f"{name}-range", "networkCidr": "16.16.16.0/24"},
    )
    return l3


async def new_vip(admin: ApiClient, l3_uuid: str, name: str, **params: Any) -> dict[str, Any]:
    """``POST /vips`` on ``l3_uuid`` (``params``: requiredIp, ...)."""
    return await admin.inventory("/vips", {"name": name, "l3NetworkUuid": l3_uuid, **params})


APPLIANCE_PORT = 7272
VR_SERVICES = {"VirtualRouter": ["DHCP", "DNS", "SNAT", "Eip", "PortForwarding", "LoadBalancer"]}


def appliance(sim: Simulator, ip: str) -> dict[str, Any]:
    """What the virtual-router appliance whose management IP is ``ip`` holds (empty when
    it never booted)."""
    machine = sim.find(ip, APPLIANCE_PORT)
    if machine is None or machine.appliance is None:
        return {}
    return machine.appliance.view()


async def router_offering(
    admin: ApiClient, dc: dict[str, Any], public: dict[str, Any], **params: Any
) -> dict[str, Any]:
    """The zone's default virtual-router offering: the data center's image, ``public`` as
    management and public network."""
    return await admin.inventory(
        "/instance-offerings/virtual-routers",
        {
            "name": "vr-offering",
            "zoneUuid": dc["zone"]["uuid"],
            "managementNetworkUuid": public["uuid"],
            "imageUuid": dc["image"]["uuid"],
            "cpuNum": 1,
            "memorySize": 512 * 1024**2,
            "isDefault": True,
            **params,
        },
    )


async def routers(admin: ApiClient, *conditions: str) -> list[dict[str, Any]]:
    answer = await admin.query("/vm-instances/appliances/virtual-routers", *conditions)
    assert answer.status == 200, answer.body
    found: list[dict[str, Any]] = answer.body["inventories"]
    return found


def router_ip(router: dict[str, Any], network_uuid: str) -> str:
    """The router's address on ``network_uuid`` (its management IP on the management one)."""
    [nic] = [n for n in router["vmNics"] if n["l3NetworkUuid"] == network_uuid]
    return str(nic["ip"])
