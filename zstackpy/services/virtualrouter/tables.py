"""What a virtual router holds for its guest L3 network, built from the database: DHCP
entries of the NICs of the VMs on a host there, SNAT for the network, the EIPs and
port-forwarding rules of those NICs. The provider sends the part of one VM when it
arrives or leaves; a router that (re)boots gets all of it (``rebuild``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from zstackpy.core.context import NodeContext
from zstackpy.services.eip.messages import GetNicEipsMsg, GetNicEipsReply
from zstackpy.services.loadbalancer.messages import (
    GetL3LoadBalancersMsg,
    GetL3LoadBalancersReply,
)
from zstackpy.services.network.messages import GetL3NetworksMsg, GetL3NetworksReply
from zstackpy.services.networkservice.extensions import (
    DHCP,
    DNS,
    EIP,
    LOAD_BALANCER,
    PORT_FORWARDING,
    SNAT,
)
from zstackpy.services.networkservice.messages import (
    GetL3NetworkServicesMsg,
    GetL3NetworkServicesReply,
)
from zstackpy.services.portforwarding.messages import (
    GetNicPortForwardingsMsg,
    GetNicPortForwardingsReply,
)
from zstackpy.services.virtualrouter.messages import VIRTUAL_ROUTER, RouterView
from zstackpy.services.vm.models import VmInstanceVO, VmNicVO
from zstackpy.services.vm.states import ON_HOST

_ON_HOST = sorted(s.value for s in ON_HOST)


@dataclass(frozen=True, slots=True)
class GuestNic:
    """A user VM's NIC on the router's guest network."""

    uuid: str
    vm_uuid: str
    mac: str
    ip: str | None
    netmask: str | None
    gateway: str | None
    is_default: bool
    hostname: str | None = None


@dataclass
class Tables:
    """Commands' lists, by the key the agent takes them under."""

    dhcp: list[dict[str, Any]] = field(default_factory=list)
    snats: list[dict[str, Any]] = field(default_factory=list)
    eips: list[dict[str, Any]] = field(default_factory=list)
    rules: list[dict[str, Any]] = field(default_factory=list)
    lbs: list[dict[str, Any]] = field(default_factory=list)


async def router_services(ctx: NodeContext, l3_uuid: str) -> set[str]:
    """The service types the virtual router serves on ``l3_uuid``."""
    reply = await ctx.bus.request(
        GetL3NetworkServicesMsg(l3_network_uuids=[l3_uuid]), GetL3NetworkServicesReply
    )
    return {t for t, p in reply.services.get(l3_uuid, {}).items() if p == VIRTUAL_ROUTER}


def snat_to(router: RouterView) -> dict[str, Any]:
    return {
        "privateNicMac": router.guest_mac,
        "privateNicIp": router.guest_gateway,
        "snatNetmask": router.guest_netmask,
        "publicIp": router.public_ip,
        "publicNicMac": router.public_mac,
    }


async def tables_for(
    ctx: NodeContext, router: RouterView, nics: list[GuestNic], services: set[str]
) -> Tables:
    """The entries of ``nics`` for the types the router serves there (SNAT not included:
    it is the network's, not a NIC's)."""
    tables = Tables()
    if not nics:
        return tables
    if DHCP in services:
        dns: list[str] = []
        domain: str | None = None
        if DNS in services:
            reply = await ctx.bus.request(
                GetL3NetworksMsg(l3_network_uuids=[router.guest_l3_network_uuid]),
                GetL3NetworksReply,
            )
            dns, domain = list(reply.networks[0].dns), reply.networks[0].dns_domain
        tables.dhcp = [
            {
                "vmUuid": n.vm_uuid,
                "ip": n.ip,
                "mac": n.mac,
                "netmask": n.netmask,
                "gateway": n.gateway,
                "hostname": n.hostname,
                "dns": dns,
                "dnsDomain": domain,
                "isDefaultL3Network": n.is_default,
            }
            for n in nics
        ]
    by_uuid = {n.uuid: n for n in nics}
    if EIP in services:
        eips = await ctx.bus.request(GetNicEipsMsg(vm_nic_uuids=sorted(by_uuid)), GetNicEipsReply)
        tables.eips = [
            {
                "eipUuid": e.eip_uuid,
                "vipIp": e.vip_ip,
                "guestIp": e.guest_ip or by_uuid[e.vm_nic_uuid].ip,
                "privateMac": by_uuid[e.vm_nic_uuid].mac,
                "publicMac": router.public_mac,
                "vmNicUuid": e.vm_nic_uuid,
            }
            for e in eips.eips
            if e.vm_nic_uuid in by_uuid
        ]
    if PORT_FORWARDING in services:
        rules = await ctx.bus.request(
            GetNicPortForwardingsMsg(vm_nic_uuids=sorted(by_uuid)), GetNicPortForwardingsReply
        )
        tables.rules = [
            {
                "uuid": r.rule_uuid,
                "vipIp": r.vip_ip,
                "vipPortStart": r.vip_port_start,
                "vipPortEnd": r.vip_port_end,
                "privatePortStart": r.private_port_start,
                "privatePortEnd": r.private_port_end,
                "protocolType": r.protocol_type,
                "allowedCidr": r.allowed_cidr,
                "privateIp": r.guest_ip or by_uuid[r.vm_nic_uuid].ip,
                "privateMac": by_uuid[r.vm_nic_uuid].mac,
                "vmNicUuid": r.vm_nic_uuid,
            }
            for r in rules.rules
            if r.vm_nic_uuid in by_uuid
        ]
    return tables


async def guest_nics(ctx: NodeContext, l3_uuid: str) -> list[GuestNic]:
    """The NICs on ``l3_uuid`` of the user VMs the database places on a host."""
    async with ctx.db.session() as session:
        rows = await session.execute(
            select(VmNicVO, VmInstanceVO.default_l3_network_uuid)
            .join(VmInstanceVO, VmInstanceVO.uuid == VmNicVO.vm_instance_uuid)
            .where(
                VmNicVO.l3_network_uuid == l3_uuid,
                VmInstanceVO.type == "UserVm",
                VmInstanceVO.state.in_(_ON_HOST),
            )
        )
        return [
            GuestNic(
                uuid=nic.uuid,
                vm_uuid=nic.vm_instance_uuid,
                mac=nic.mac,
                ip=nic.ip,
                netmask=nic.netmask,
                gateway=nic.gateway,
                is_default=default_l3 == l3_uuid,
            )
            for nic, default_l3 in rows.all()
        ]


async def whole(ctx: NodeContext, router: RouterView) -> Tables:
    """Everything the router should hold now."""
    services = await router_services(ctx, router.guest_l3_network_uuid)
    tables = await tables_for(
        ctx, router, await guest_nics(ctx, router.guest_l3_network_uuid), services
    )
    if SNAT in services:
        tables.snats = [snat_to(router)]
    if LOAD_BALANCER in services:
        reply = await ctx.bus.request(
            GetL3LoadBalancersMsg(l3_network_uuid=router.guest_l3_network_uuid),
            GetL3LoadBalancersReply,
        )
        tables.lbs = [lb.to_agent() for lb in reply.load_balancers]
    return tables
