"""The flat provider's DHCP server address of each L3 network: one address of the L3,
allocated from its ranges the first time a VM of the network needs DHCP (``used_for``
"DhcpServer"), the same on every host. Each host's agent puts it on the network's own
namespace there (``agents/kvm/dhcpns.py``), where dnsmasq answers the guests.

The UsedIp row is the record: no table of its own. Two nodes asking for an L3's first
address at once may both allocate one; whoever sees more than one keeps the lowest and
gives the others back, so all settle on one (a host told the other in between is told
the kept one with the VM's next DHCP command). The address goes with its range or L3.
"""

from __future__ import annotations

from sqlalchemy import select

from zstackpy.core.context import NodeContext
from zstackpy.core.errors import SysErr, ZError
from zstackpy.services.network.messages import (
    USED_FOR_DHCP_SERVER,
    AllocateIpMsg,
    AllocateIpReply,
    ReleaseIpMsg,
)
from zstackpy.services.network.models import UsedIpVO


async def _held(ctx: NodeContext, l3_uuids: list[str]) -> dict[str, list[tuple[int, str, str]]]:
    """L3 -> its DHCP server rows as (address as a number, address, row uuid), lowest first."""
    async with ctx.db.read_session() as session:
        rows = await session.execute(
            select(UsedIpVO.l3_network_uuid, UsedIpVO.ip_in_long, UsedIpVO.ip, UsedIpVO.uuid)
            .where(UsedIpVO.l3_network_uuid.in_(l3_uuids))
            .where(UsedIpVO.used_for == USED_FOR_DHCP_SERVER)
        )
        held: dict[str, list[tuple[int, str, str]]] = {}
        for l3, number, ip, uuid in rows.all():
            held.setdefault(l3, []).append((number, ip, uuid))
    return {l3: sorted(found) for l3, found in held.items()}


async def dhcp_server_ips(ctx: NodeContext, l3_uuids: list[str]) -> dict[str, str]:
    """L3 uuid -> its DHCP server address, allocated now for those that have none. A full
    L3 network fails with the IPAM service's error (L3.1005): its VMs get no DHCP."""
    held = await _held(ctx, l3_uuids)
    missing = [l3 for l3 in l3_uuids if l3 not in held]
    for l3 in missing:
        reply = await ctx.bus.request(
            AllocateIpMsg(l3_network_uuid=l3, used_for=USED_FOR_DHCP_SERVER), AllocateIpReply
        )
        if reply.ip is None:
            raise ZError(SysErr.INTERNAL, "the IPAM service answered no address", l3=l3)
    if missing or any(len(rows) > 1 for rows in held.values()):
        held = await _held(ctx, l3_uuids)
    for l3, rows in held.items():
        for _, _, extra in rows[1:]:
            (
                await ctx.bus.call(ReleaseIpMsg(l3_network_uuid=l3, used_ip_uuid=extra))
            ).raise_if_error()
    return {l3: rows[0][1] for l3, rows in held.items()}
