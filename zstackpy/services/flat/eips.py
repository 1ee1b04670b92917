"""The flat provider's EIPs: a VIP NATed to a NIC's address on the host running the VM
(``/flatnetworkprovider/eip/...``), with the bridges of both networks."""

from __future__ import annotations

from typing import Any

from zstackpy.core.context import NodeContext
from zstackpy.services.eip.messages import EipView, GetNicEipsMsg, GetNicEipsReply
from zstackpy.services.network.messages import GetL3NetworksMsg, GetL3NetworksReply
from zstackpy.services.networkservice.extensions import EIP, VmServicesEvent
from zstackpy.services.vm.extensions import VmNicSpec

APPLY = "/flatnetworkprovider/eip/apply"
DELETE = "/flatnetworkprovider/eip/delete"
BATCH_APPLY = "/flatnetworkprovider/eip/batchapply"
BATCH_DELETE = "/flatnetworkprovider/eip/batchdelete"


async def public_bridges(ctx: NodeContext, l3_uuids: list[str]) -> dict[str, str]:
    """VIP L3 uuid -> its bridge on the hosts."""
    wanted = sorted(set(l3_uuids))
    if not wanted:
        return {}
    reply = await ctx.bus.request(GetL3NetworksMsg(l3_network_uuids=wanted), GetL3NetworksReply)
    return {net.uuid: net.bridge_name for net in reply.networks}


def eip_to(eip: EipView, vm_uuid: str, nic: VmNicSpec, bridges: dict[str, str]) -> dict[str, Any]:
    return {
        "eipUuid": eip.eip_uuid,
        "vip": eip.vip_ip,
        "vipNetmask": eip.vip_netmask,
        "vipGateway": eip.vip_gateway,
        "publicBridgeName": bridges.get(eip.vip_l3_network_uuid),
        "nicIp": eip.guest_ip or nic.ip,
        "nicMac": nic.mac,
        "nicName": nic.internal_name,
        "nicUuid": nic.uuid,
        "vmBridgeName": nic.bridge_name,
        "vmUuid": vm_uuid,
        "l3NetworkUuid": nic.l3_network_uuid,
    }


async def eips_of(ctx: NodeContext, event: VmServicesEvent) -> list[dict[str, Any]]:
    """The EIP commands of the VM's NICs whose networks take Eip from this provider."""
    nics = {n.uuid: n for n in event.nics if EIP in event.services.get(n.uuid, ())}
    if not nics:
        return []
    reply = await ctx.bus.request(GetNicEipsMsg(vm_nic_uuids=sorted(nics)), GetNicEipsReply)
    bridges = await public_bridges(ctx, [e.vip_l3_network_uuid for e in reply.eips])
    return [
        eip_to(e, event.placement.vm_uuid, nics[e.vm_nic_uuid], bridges)
        for e in reply.eips
        if e.vm_nic_uuid in nics
    ]
