"""A reconnecting host gets back the flat services of the VMs it runs: their DHCP entries
and their EIPs' NAT (a host that rebooted, or whose agent lost its state, holds none).
Runs in the host's queue during the connect, so the agent is called directly."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from zstackpy.core.context import NodeContext
from zstackpy.services.host.extensions import ConnectingHost
from zstackpy.services.networkservice.extensions import VmServicesEvent
from zstackpy.services.networkservice.messages import (
    GetL3NetworkServicesMsg,
    GetL3NetworkServicesReply,
)
from zstackpy.services.vm.extensions import VmHost, VmPlacementEvent
from zstackpy.services.vm.models import VmInstanceVO, VmNicVO
from zstackpy.services.vm.records import nic_specs
from zstackpy.services.vm.states import ON_HOST

_ON_HOST = sorted(s.value for s in ON_HOST)


async def events_on_host(
    ctx: NodeContext, host: ConnectingHost, provider_type: str
) -> list[VmServicesEvent]:
    """One event per VM the database places on the host, with the NICs whose networks
    take services from ``provider_type``."""
    async with ctx.db.session() as session:
        vms = list(
            (
                await session.execute(
                    select(VmInstanceVO).where(
                        VmInstanceVO.host_uuid == host.uuid, VmInstanceVO.state.in_(_ON_HOST)
                    )
                )
            ).scalars()
        )
        nics = list(
            (
                await session.execute(
                    select(VmNicVO).where(VmNicVO.vm_instance_uuid.in_([v.uuid for v in vms]))
                )
            ).scalars()
        )
    if not nics:
        return []
    services = await ctx.bus.request(
        GetL3NetworkServicesMsg(l3_network_uuids=sorted({n.l3_network_uuid for n in nics})),
        GetL3NetworkServicesReply,
    )
    target = VmHost(host.uuid, host.management_ip, host.hypervisor_type)
    events = []
    for vm in vms:
        mine = [n for n in nics if n.vm_instance_uuid == vm.uuid]
        served: dict[str, tuple[str, ...]] = {}
        for nic in mine:
            types = services.services.get(nic.l3_network_uuid, {})
            served[nic.uuid] = tuple(t for t, p in types.items() if p == provider_type)
        specs = await nic_specs(
            ctx, [n for n in mine if served[n.uuid]], vm.default_l3_network_uuid
        )
        if specs:
            placement = VmPlacementEvent(
                vm_uuid=vm.uuid, host=target, nics=specs, cause="host-reconnected"
            )
            events.append(VmServicesEvent(placement=placement, nics=specs, services=served))
    return events


def merged(parts: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    return [item for part in parts for item in part]
