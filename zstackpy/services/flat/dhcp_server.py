"""The flat provider's DHCP server address of each L3 network: one address of the L3,
allocated from its ranges the first time a VM of the network needs DHCP (``used_for``
"DhcpServer"), the same on every host. Each host's agent puts it on the network's own
namespace there (``agents/kvm/dhcpns.py``), where dnsmasq answers the guests.

The UsedIp row is the record: no table of its own. The node owning the L3 answers
(``GetDhcpServerIpMsg``, in the L3's flat-DHCP queue), so concurrent first VMs of a
network share one allocation. Should two rows exist all the same (the L3's owner changed
while one allocated), the lowest is kept and the others given back. The address goes
with its range or L3.
"""

from __future__ import annotations

from sqlalchemy import select

from zstackpy.core.context import NodeContext
from zstackpy.core.errors import SysErr, ZError
from zstackpy.services.flat.messages import GetDhcpServerIpMsg, GetDhcpServerIpReply
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
    """L3 uuid -> its DHCP server address, allocated by the L3's owner for those that
    have none. A full L3 network fails with the IPAM service's error (L3.1005): its VMs
    get no DHCP."""
    held = await _held(ctx, l3_uuids)
    found = {l3: rows[0][1] for l3, rows in held.items() if len(rows) == 1}
    for l3 in l3_uuids:
        if l3 not in found:
            reply = await ctx.bus.request(
                GetDhcpServerIpMsg(l3_network_uuid=l3), GetDhcpServerIpReply
            )
            found[l3] = reply.ip
    return found


async def get_or_allocate(ctx: NodeContext, l3: str) -> str:
    """What ``GetDhcpServerIpMsg`` answers; run in the L3's flat-DHCP queue."""
    held = await _held(ctx, [l3])
    if l3 not in held:
        reply = await ctx.bus.request(
            AllocateIpMsg(l3_network_uuid=l3, used_for=USED_FOR_DHCP_SERVER), AllocateIpReply
        )
        if reply.ip is None:
            raise ZError(SysErr.INTERNAL, "the IPAM service answered no address", l3=l3)
        held = await _held(ctx, [l3])
    rows = held[l3]
    for _, _, extra in rows[1:]:
        (await ctx.bus.call(ReleaseIpMsg(l3_network_uuid=l3, used_ip_uuid=extra))).raise_if_error()
    return rows[0][1]
