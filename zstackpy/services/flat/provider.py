"""The flat network-service provider: DHCP, DNS, userdata and EIPs served on each KVM host
by its agent (no appliance VM). A VM's DHCP entries (address, gateway, DNS servers, host
name) go to the host before the VM boots there and leave with it; its NICs' EIPs are NATed
on that host the same way (``FlatEips``)."""

from __future__ import annotations

from typing import Any

from zstackpy.core.context import NodeContext
from zstackpy.core.errors import ZError
from zstackpy.core.service import Service
from zstackpy.services.eip.extensions import EipOnHost
from zstackpy.services.eip.messages import GetNicEipsMsg, GetNicEipsReply
from zstackpy.services.flat import eips, resync
from zstackpy.services.host.extensions import ConnectingHost
from zstackpy.services.host.messages import HostAgentCallMsg
from zstackpy.services.network.messages import GetL3NetworksMsg, GetL3NetworksReply
from zstackpy.services.networkservice.errors import NetworkServiceErr
from zstackpy.services.networkservice.extensions import (
    DHCP,
    DNS,
    EIP,
    USERDATA,
    L3ServiceChange,
    ProviderInfo,
    VmServicesEvent,
)
from zstackpy.services.vm.extensions import VmNicSpec

FLAT = "Flat"
DHCP_APPLY = "/flatnetworkprovider/dhcp/apply"
DHCP_RELEASE = "/flatnetworkprovider/dhcp/release"
AGENT_TIMEOUT_S = 120.0


async def host_call(ctx: NodeContext, host_uuid: str, path: str, command: dict[str, Any]) -> None:
    """One command on a Connected host, in its queue (HOST.1002 when it is not)."""
    reply = await ctx.bus.call(
        HostAgentCallMsg(host_uuid=host_uuid, path=path, command=command, timeout=AGENT_TIMEOUT_S),
        timeout=AGENT_TIMEOUT_S + 30,
    )
    reply.raise_if_error()


class FlatProvider(Service):
    """Registered as the ``Flat`` NetworkServiceProviderBackend and EipBackend. A service
    only to get the node's context: it handles no messages."""

    name = "flatNetworkProvider"

    def provider(self) -> ProviderInfo:
        return ProviderInfo(
            name="Flat Network Service Provider",
            type=FLAT,
            description="DHCP, DNS, userdata and EIPs on each KVM host, by its agent",
            service_types=(DHCP, DNS, USERDATA, EIP),
        )

    async def attach_to_l3(self, change: L3ServiceChange) -> None:
        return None

    async def detach_from_l3(self, change: L3ServiceChange) -> None:
        if EIP not in change.service_types:
            return  # DHCP/DNS entries stay on hosts until their VMs leave them
        reply = await self.ctx.bus.request(
            GetNicEipsMsg(l3_network_uuid=change.l3_network_uuid), GetNicEipsReply
        )
        if reply.eips:
            used = sorted(e.eip_uuid for e in reply.eips)
            raise ZError(
                NetworkServiceErr.IN_USE,
                f"EIPs {', '.join(used)} are attached to NICs of L3 network "
                f"{change.l3_network_uuid}: detach them first",
                l3NetworkUuid=change.l3_network_uuid,
                eipUuids=used,
            )

    async def _dhcp(self, event: VmServicesEvent) -> list[dict[str, Any]]:
        nics = [n for n in event.nics if DHCP in event.services.get(n.uuid, ())]
        if not nics:
            return []
        reply = await self.ctx.bus.request(
            GetL3NetworksMsg(l3_network_uuids=sorted({n.l3_network_uuid for n in nics})),
            GetL3NetworksReply,
        )
        dns = {net.uuid: list(net.dns) for net in reply.networks}
        domains = {net.uuid: net.dns_domain for net in reply.networks}
        return [_dhcp_entry(event, n, dns.get(n.l3_network_uuid, []), domains) for n in nics]

    async def vm_arriving(self, event: VmServicesEvent) -> None:
        host = event.placement.host.uuid
        entries = await self._dhcp(event)
        if entries:
            await host_call(self.ctx, host, DHCP_APPLY, {"dhcp": entries, "rebuild": False})
        nat = await eips.eips_of(self.ctx, event)
        if nat:
            try:
                await host_call(self.ctx, host, eips.BATCH_APPLY, {"eips": nat})
            except BaseException:
                if entries:  # the VM will not come: its DHCP entries go too
                    await host_call(self.ctx, host, DHCP_RELEASE, {"dhcp": entries})
                raise

    async def vm_arrived(self, event: VmServicesEvent) -> None:
        return None

    async def vm_left(self, event: VmServicesEvent) -> None:
        host = event.placement.host.uuid
        nat = await eips.eips_of(self.ctx, event)
        if nat:
            await host_call(self.ctx, host, eips.BATCH_DELETE, {"eips": nat})
        entries = await self._dhcp(event)
        if entries:
            await host_call(self.ctx, host, DHCP_RELEASE, {"dhcp": entries})

    # ----- EipBackend: EIPs attached or detached while the VM runs ----------------------

    def provider_type(self) -> str:
        return FLAT

    async def apply_eip(self, eip: EipOnHost) -> None:
        bridges = await eips.public_bridges(self.ctx, [eip.eip])
        command = {"eip": eips.eip_to(eip.eip, eip.vm_uuid, eip.nic, bridges)}
        await host_call(self.ctx, eip.host.uuid, eips.APPLY, command)

    async def revoke_eip(self, eip: EipOnHost) -> None:
        bridges = await eips.public_bridges(self.ctx, [eip.eip])
        command = {"eip": eips.eip_to(eip.eip, eip.vm_uuid, eip.nic, bridges)}
        await host_call(self.ctx, eip.host.uuid, eips.DELETE, command)

    async def host_connected(self, host: ConnectingHost) -> None:
        if host.is_first_connect:
            return  # a new host runs no VM yet
        events = await resync.events_on_host(self.ctx, host, FLAT)
        dhcp = resync.merged([await self._dhcp(e) for e in events])
        nat = resync.merged([await eips.eips_of(self.ctx, e) for e in events])
        # In the host's queue: its agent directly (a HostAgentCallMsg would wait for us).
        # ``rebuild``: the host's whole tables, so entries it should no longer hold go.
        await self.ctx.agents.call(
            host.agent, DHCP_APPLY, {"dhcp": dhcp, "rebuild": True}, timeout=AGENT_TIMEOUT_S
        )
        await self.ctx.agents.call(
            host.agent, eips.BATCH_APPLY, {"eips": nat, "rebuild": True}, timeout=AGENT_TIMEOUT_S
        )


def _dhcp_entry(
    event: VmServicesEvent, nic: VmNicSpec, dns: list[str], domains: dict[str, str | None]
) -> dict[str, Any]:
    return {
        "vmUuid": event.placement.vm_uuid,
        "ip": nic.ip,
        "mac": nic.mac,
        "netmask": nic.netmask,
        "gateway": nic.gateway,
        "hostname": event.placement.hostname,
        "dns": dns if DNS in event.services.get(nic.uuid, ()) else [],
        "dnsDomain": domains.get(nic.l3_network_uuid),
        "bridgeName": nic.bridge_name,
        "l3NetworkUuid": nic.l3_network_uuid,
        "isDefaultL3Network": nic.is_default,
    }
