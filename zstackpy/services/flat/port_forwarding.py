"""The flat provider's port forwarding: a VIP's port range forwarded (DNAT) to a NIC's on
the host running the VM (``/flatnetworkprovider/portforwarding/...``). ZStack serves port
forwarding from its virtual router only; on flat networks we do it on the host, as EIPs."""

from __future__ import annotations

from typing import Any

from zstackpy.core.context import NodeContext
from zstackpy.services.flat.eips import public_bridges
from zstackpy.services.networkservice.extensions import PORT_FORWARDING, VmServicesEvent
from zstackpy.services.portforwarding.messages import (
    GetNicPortForwardingsMsg,
    GetNicPortForwardingsReply,
    PortForwardingView,
)
from zstackpy.services.vm.extensions import VmNicSpec

APPLY = "/flatnetworkprovider/portforwarding/apply"
DELETE = "/flatnetworkprovider/portforwarding/delete"
BATCH_APPLY = "/flatnetworkprovider/portforwarding/batchapply"
BATCH_DELETE = "/flatnetworkprovider/portforwarding/batchdelete"


def rule_to(
    rule: PortForwardingView, vm_uuid: str, nic: VmNicSpec, bridges: dict[str, str]
) -> dict[str, Any]:
    return {
        "uuid": rule.rule_uuid,
        "vip": rule.vip_ip,
        "vipPortStart": rule.vip_port_start,
        "vipPortEnd": rule.vip_port_end,
        "privatePortStart": rule.private_port_start,
        "privatePortEnd": rule.private_port_end,
        "protocolType": rule.protocol_type,
        "allowedCidr": rule.allowed_cidr,
        "publicBridgeName": bridges.get(rule.vip_l3_network_uuid),
        "nicIp": rule.guest_ip or nic.ip,
        "nicMac": nic.mac,
        "nicUuid": nic.uuid,
        "vmUuid": vm_uuid,
    }


async def one_rule(
    ctx: NodeContext, rule: PortForwardingView, vm_uuid: str, nic: VmNicSpec
) -> dict[str, Any]:
    bridges = await public_bridges_of(ctx, [rule])
    return rule_to(rule, vm_uuid, nic, bridges)


async def public_bridges_of(ctx: NodeContext, rules: list[PortForwardingView]) -> dict[str, str]:
    return await public_bridges(ctx, [r.vip_l3_network_uuid for r in rules])


async def rules_of(ctx: NodeContext, event: VmServicesEvent) -> list[dict[str, Any]]:
    """The rules of the VM's NICs whose networks take PortForwarding from this provider."""
    nics = {n.uuid: n for n in event.nics if PORT_FORWARDING in event.services.get(n.uuid, ())}
    if not nics:
        return []
    reply = await ctx.bus.request(
        GetNicPortForwardingsMsg(vm_nic_uuids=sorted(nics)), GetNicPortForwardingsReply
    )
    bridges = await public_bridges_of(ctx, reply.rules)
    return [
        rule_to(r, event.placement.vm_uuid, nics[r.vm_nic_uuid], bridges)
        for r in reply.rules
        if r.vm_nic_uuid in nics
    ]
