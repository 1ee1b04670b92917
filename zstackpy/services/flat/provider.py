"""The flat network-service provider: DHCP, DNS, userdata and EIPs served on each KVM host
by its agent (no appliance VM). A VM's DHCP entries (address, gateway, DNS servers, host
name) and its userdata go to the host before the VM boots there and leave with it; its
NICs' EIPs are NATed on that host the same way (``eips``, ``userdata``)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from zstackpy.core.context import NodeContext
from zstackpy.core.errors import ZError
from zstackpy.core.service import Service, handles
from zstackpy.core.workqueue import QueueKey
from zstackpy.services.eip.extensions import EipOnHost
from zstackpy.services.eip.messages import GetNicEipsMsg, GetNicEipsReply
from zstackpy.services.flat import eips, port_forwarding, resync, userdata
from zstackpy.services.flat.dhcp_server import dhcp_server_ips, get_or_allocate
from zstackpy.services.flat.messages import (
    FLAT_SERVICE,
    GetDhcpServerIpMsg,
    GetDhcpServerIpReply,
)
from zstackpy.services.host.extensions import ConnectingHost
from zstackpy.services.host.messages import HostAgentCallMsg, ListHostsMsg, ListHostsReply
from zstackpy.services.kvm.models import KVM_HYPERVISOR
from zstackpy.services.network.messages import GetL3NetworksMsg, GetL3NetworksReply
from zstackpy.services.networkservice.errors import NetworkServiceErr
from zstackpy.services.networkservice.extensions import (
    DHCP,
    DNS,
    EIP,
    PORT_FORWARDING,
    USERDATA,
    L3ServiceChange,
    ProviderInfo,
    VmServicesEvent,
)
from zstackpy.services.portforwarding.extensions import PortForwardingOnHost
from zstackpy.services.vm.extensions import VmNicSpec

log = logging.getLogger(__name__)

FLAT = "Flat"
DHCP_APPLY = "/flatnetworkprovider/dhcp/apply"
DHCP_RELEASE = "/flatnetworkprovider/dhcp/release"
DHCP_DELETE_NAMESPACE = "/flatnetworkprovider/dhcp/deletenamespace"
AGENT_TIMEOUT_S = 120.0


async def host_call(ctx: NodeContext, host_uuid: str, path: str, command: dict[str, Any]) -> None:
    """One command on a Connected host, in its queue (HOST.1002 when it is not)."""
    reply = await ctx.bus.call(
        HostAgentCallMsg(host_uuid=host_uuid, path=path, command=command, timeout=AGENT_TIMEOUT_S),
        timeout=AGENT_TIMEOUT_S + 30,
    )
    reply.raise_if_error()


async def _connected_hosts_of(ctx: NodeContext, l3_uuid: str) -> list[str]:
    """The Connected KVM hosts of the clusters the network's L2 is attached to: where its
    namespace may be."""
    reply = await ctx.bus.request(GetL3NetworksMsg(l3_network_uuids=[l3_uuid]), GetL3NetworksReply)
    clusters = reply.networks[0].attached_cluster_uuids
    if not clusters:
        return []
    hosts = await ctx.bus.request(
        ListHostsMsg(cluster_uuids=clusters, connected_only=True), ListHostsReply
    )
    return [h.uuid for h in hosts.hosts if h.hypervisor_type == KVM_HYPERVISOR]


class FlatProvider(Service):
    """Registered as the ``Flat`` NetworkServiceProviderBackend and EipBackend; handles
    its networks' DHCP server addresses."""

    name = FLAT_SERVICE

    @handles(GetDhcpServerIpMsg)
    async def dhcp_server_ip(self, msg: GetDhcpServerIpMsg) -> GetDhcpServerIpReply:
        l3 = msg.l3_network_uuid
        ip = await self.ctx.queues.run(QueueKey("flat-dhcp", l3), get_or_allocate, self.ctx, l3)
        return GetDhcpServerIpReply(ip=ip)

    def provider(self) -> ProviderInfo:
        return ProviderInfo(
            name="Flat Network Service Provider",
            type=FLAT,
            description="DHCP, DNS, userdata, EIPs and port forwarding on each KVM host",
            # PortForwarding: ours; ZStack serves it from its virtual router only.
            service_types=(DHCP, DNS, USERDATA, EIP, PORT_FORWARDING),
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

    async def detached_from_l3(self, change: L3ServiceChange) -> None:
        """DHCP gone from the network: its namespace (DHCP, DNS and the metadata server)
        leaves every host at once, running VMs' entries with it; their later departures
        release nothing, since the network no longer has the service."""
        if DHCP not in change.service_types:
            return
        l3 = change.l3_network_uuid
        hosts = await _connected_hosts_of(self.ctx, l3)
        results = await asyncio.gather(
            *(host_call(self.ctx, h, DHCP_DELETE_NAMESPACE, {"l3NetworkUuid": l3}) for h in hosts),
            return_exceptions=True,
        )
        for host, result in zip(hosts, results, strict=True):
            if isinstance(result, ZError):
                log.warning(
                    "host %s keeps the DHCP namespace of L3 network %s until it reconnects: %s",
                    host,
                    l3,
                    result.description,
                )
            elif isinstance(result, BaseException):
                raise result

    async def _dhcp(self, event: VmServicesEvent, *, serving: bool = True) -> list[dict[str, Any]]:
        """The VM's DHCP entries; ``serving``: with their network's DHCP server address
        (allocated if it has none yet; a release names the MACs only)."""
        nics = [n for n in event.nics if DHCP in event.services.get(n.uuid, ())]
        if not nics:
            return []
        l3_uuids = sorted({n.l3_network_uuid for n in nics})
        reply = await self.ctx.bus.request(
            GetL3NetworksMsg(l3_network_uuids=l3_uuids), GetL3NetworksReply
        )
        dns = {net.uuid: list(net.dns) for net in reply.networks}
        domains = {net.uuid: net.dns_domain for net in reply.networks}
        servers = await dhcp_server_ips(self.ctx, l3_uuids) if serving else {}
        return [
            _dhcp_entry(event, n, dns.get(n.l3_network_uuid, []), domains, servers) for n in nics
        ]

    async def vm_arriving(self, event: VmServicesEvent) -> None:
        host = event.placement.host.uuid
        entries = await self._dhcp(event)
        if entries:
            await host_call(self.ctx, host, DHCP_APPLY, {"dhcp": entries, "rebuild": False})
        nat = await eips.eips_of(self.ctx, event)
        forwards = await port_forwarding.rules_of(self.ctx, event)
        data = await userdata.userdata_of(self.ctx, event)
        try:
            if nat:
                await host_call(self.ctx, host, eips.BATCH_APPLY, {"eips": nat})
            if forwards:
                await host_call(self.ctx, host, port_forwarding.BATCH_APPLY, {"rules": forwards})
            if data:
                await host_call(self.ctx, host, userdata.BATCH_APPLY, {"userdata": data})
        except BaseException:
            # The VM will not come: what it had put there goes (best effort: the refusal
            # is the error that matters).
            try:
                await self._release(host, entries, nat, forwards, data)
            except ZError as exc:
                log.warning(
                    "VM %s: undoing its flat services failed: %s", event.placement.vm_uuid, exc
                )
            raise

    async def vm_arrived(self, event: VmServicesEvent) -> None:
        return None

    async def vm_left(self, event: VmServicesEvent) -> None:
        entries = await self._dhcp(event, serving=False)
        nat = await eips.eips_of(self.ctx, event)
        forwards = await port_forwarding.rules_of(self.ctx, event)
        data = await userdata.userdata_of(self.ctx, event)
        await self._release(event.placement.host.uuid, entries, nat, forwards, data)

    async def _release(
        self,
        host: str,
        entries: list[dict[str, Any]],
        nat: list[dict[str, Any]],
        forwards: list[dict[str, Any]],
        data: list[dict[str, Any]],
    ) -> None:
        """Take a VM's entries off the host; each table is tried even if another fails."""
        calls = [
            (userdata.RELEASE, {"userdata": userdata.release_of(data)}, data),
            (port_forwarding.BATCH_DELETE, {"rules": forwards}, forwards),
            (eips.BATCH_DELETE, {"eips": nat}, nat),
            (DHCP_RELEASE, {"dhcp": entries}, entries),
        ]
        failure: ZError | None = None
        for path, command, items in calls:
            if not items:
                continue
            try:
                await host_call(self.ctx, host, path, command)
            except ZError as exc:
                failure = failure or exc
        if failure is not None:
            raise failure

    # ----- EipBackend: EIPs attached or detached while the VM runs ----------------------

    def provider_type(self) -> str:
        return FLAT

    async def apply_eip(self, eip: EipOnHost) -> None:
        bridges = await eips.public_bridges(self.ctx, [eip.eip.vip_l3_network_uuid])
        command = {"eip": eips.eip_to(eip.eip, eip.vm_uuid, eip.nic, bridges)}
        await host_call(self.ctx, eip.host.uuid, eips.APPLY, command)

    async def apply_port_forwarding(self, rule: PortForwardingOnHost) -> None:
        command = await port_forwarding.one_rule(self.ctx, rule.rule, rule.vm_uuid, rule.nic)
        await host_call(self.ctx, rule.host.uuid, port_forwarding.APPLY, {"rule": command})

    async def revoke_port_forwarding(self, rule: PortForwardingOnHost) -> None:
        command = await port_forwarding.one_rule(self.ctx, rule.rule, rule.vm_uuid, rule.nic)
        await host_call(self.ctx, rule.host.uuid, port_forwarding.DELETE, {"rule": command})

    async def revoke_eip(self, eip: EipOnHost) -> None:
        bridges = await eips.public_bridges(self.ctx, [eip.eip.vip_l3_network_uuid])
        command = {"eip": eips.eip_to(eip.eip, eip.vm_uuid, eip.nic, bridges)}
        await host_call(self.ctx, eip.host.uuid, eips.DELETE, command)

    async def host_connected(self, host: ConnectingHost) -> None:
        if host.is_first_connect:
            return  # a new host runs no VM yet
        events = await resync.events_on_host(self.ctx, host, FLAT)
        dhcp = resync.merged([await self._dhcp(e) for e in events])
        nat = resync.merged([await eips.eips_of(self.ctx, e) for e in events])
        forwards = resync.merged([await port_forwarding.rules_of(self.ctx, e) for e in events])
        data = resync.merged([await userdata.userdata_of(self.ctx, e) for e in events])
        if not (dhcp or nat or forwards or data):
            # Nothing of ours runs there: hosts of clusters without flat services (a KVM
            # agent built without them among them) are not sent empty tables. Entries left
            # by a service detached from an L3 while its VMs ran stay until one of its VMs
            # comes back (docs/network-services.md).
            return
        # In the host's queue: its agent directly (a HostAgentCallMsg would wait for us).
        # ``rebuild``: the host's whole tables, so entries it should no longer hold go.
        await self.ctx.agents.call(
            host.agent, DHCP_APPLY, {"dhcp": dhcp, "rebuild": True}, timeout=AGENT_TIMEOUT_S
        )
        await self.ctx.agents.call(
            host.agent, eips.BATCH_APPLY, {"eips": nat, "rebuild": True}, timeout=AGENT_TIMEOUT_S
        )
        await self.ctx.agents.call(
            host.agent,
            port_forwarding.BATCH_APPLY,
            {"rules": forwards, "rebuild": True},
            timeout=AGENT_TIMEOUT_S,
        )
        await self.ctx.agents.call(
            host.agent,
            userdata.BATCH_APPLY,
            {"userdata": data, "rebuild": True},
            timeout=AGENT_TIMEOUT_S,
        )


def _dhcp_entry(
    event: VmServicesEvent,
    nic: VmNicSpec,
    dns: list[str],
    domains: dict[str, str | None],
    servers: dict[str, str],
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
        # Where the host's namespace of the network answers DHCP (and routes guests to
        # the metadata address): agents/kvm/dhcpns.py.
        "dhcpServerIp": servers.get(nic.l3_network_uuid),
    }
