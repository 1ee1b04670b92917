"""Bridges: how an L2 network exists on a host.

A NoVlan network is a Linux bridge over its physical interface (``br_eth0``), a Vlan
network a bridge over the interface's vlan device (``br_eth0_100``): ZStack's names, which
VM NICs on the network plug into. Bridges are made when an L2 is attached to a cluster
(on every Connected host of it) and whenever a host of an attached cluster connects.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from zstackpy.core.context import NodeContext
from zstackpy.core.errors import ZError
from zstackpy.services.host.extensions import ConnectingHost
from zstackpy.services.host.messages import (
    HostAgentCallMsg,
    HostAgentCallReply,
    HostSummary,
    ListHostsMsg,
    ListHostsReply,
)
from zstackpy.services.network.errors import L2Err
from zstackpy.services.network.models import L2_VLAN, L2NetworkClusterRefVO, L2NetworkVO

NO_VLAN_BRIDGE_PATH = "/network/l2novlan/createbridge"
VLAN_BRIDGE_PATH = "/network/l2vlan/createbridge"
BRIDGE_TIMEOUT_S = 60.0


def bridge_name(physical_interface: str, vlan: int | None) -> str:
    """ZStack's bridge name; dots (``bond0.2``) become underscores as in its agent."""
    base = "br_" + physical_interface.replace(".", "_")
    return base if vlan is None else f"{base}_{vlan}"


@dataclass(frozen=True, slots=True)
class Bridge:
    """One L2 network's bridge and the agent command that creates it."""

    l2_network_uuid: str
    physical_interface: str
    vlan: int | None

    @classmethod
    def of(cls, l2: L2NetworkVO) -> Bridge:
        vlan = l2.virtual_network_id if l2.type == L2_VLAN else None
        return cls(l2.uuid, l2.physical_interface, vlan)

    @property
    def name(self) -> str:
        return bridge_name(self.physical_interface, self.vlan)

    @property
    def path(self) -> str:
        return NO_VLAN_BRIDGE_PATH if self.vlan is None else VLAN_BRIDGE_PATH

    def command(self) -> dict[str, Any]:
        cmd: dict[str, Any] = {
            "physicalInterfaceName": self.physical_interface,
            "bridgeName": self.name,
            "l2NetworkUuid": self.l2_network_uuid,
        }
        if self.vlan is not None:
            cmd["vlan"] = self.vlan
        return cmd


def _failed(bridge: Bridge, host_uuid: str, host_name: str, exc: ZError) -> ZError:
    return ZError(
        L2Err.BRIDGE_FAILED,
        f"host {host_name} ({host_uuid}) could not create bridge {bridge.name} "
        f"of L2 network {bridge.l2_network_uuid}: {exc.description}",
        cause=exc.info(),
        host_uuid=host_uuid,
        bridge=bridge.name,
        l2_network_uuid=bridge.l2_network_uuid,
    )


async def connected_hosts(ctx: NodeContext, cluster_uuid: str) -> list[HostSummary]:
    reply = await ctx.bus.request(
        ListHostsMsg(cluster_uuids=[cluster_uuid], connected_only=True), ListHostsReply
    )
    return reply.hosts


async def realise_on_hosts(ctx: NodeContext, bridge: Bridge, hosts: list[HostSummary]) -> None:
    """Create ``bridge`` on every host, in parallel, each through its host's queue.
    Raises L2.1005 naming the first host that failed (after all have answered)."""

    async def one(host: HostSummary) -> None:
        msg = HostAgentCallMsg(
            host_uuid=host.uuid,
            path=bridge.path,
            command=bridge.command(),
            timeout=BRIDGE_TIMEOUT_S,
        )
        try:
            await ctx.bus.request(msg, HostAgentCallReply, timeout=BRIDGE_TIMEOUT_S + 5)
        except ZError as exc:
            raise _failed(bridge, host.uuid, host.name, exc) from exc

    results = await asyncio.gather(*(one(h) for h in hosts), return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result


async def create_bridges_for_host(ctx: NodeContext, host: ConnectingHost) -> None:
    """HostConnectExtension's work: a connecting host gets the bridges of every L2 network
    attached to its cluster. It runs in the host's queue, so the agent is called directly
    (a HostAgentCallMsg would wait for that same queue). Raises L2.1005."""
    async with ctx.db.session() as session:
        rows = await session.execute(
            select(L2NetworkVO)
            .join(L2NetworkClusterRefVO, L2NetworkClusterRefVO.l2_network_uuid == L2NetworkVO.uuid)
            .where(L2NetworkClusterRefVO.cluster_uuid == host.cluster_uuid)
            .order_by(L2NetworkVO.create_date, L2NetworkVO.uuid)
        )
        bridges = [Bridge.of(l2) for l2 in rows.scalars()]
    for bridge in bridges:
        try:
            await ctx.agents.call(
                host.agent, bridge.path, bridge.command(), timeout=BRIDGE_TIMEOUT_S
            )
        except ZError as exc:
            raise _failed(bridge, host.uuid, host.name, exc) from exc
