"""The ``VirtualRouter`` network-service provider: DHCP, DNS, SNAT, EIPs and port
forwarding served by an appliance VM on each guest L3 network (its router), configured
through the appliance's agent. The router is made when the first VM with a NIC on the
network is about to start there (as ZStack does), and a VM's entries go to it before the
VM boots and leave with it; a router that boots again gets everything (``flows.py``)."""

from __future__ import annotations

import logging
from typing import Any

from zstackpy.core.agent import AgentErr
from zstackpy.core.errors import ZError
from zstackpy.core.service import Service
from zstackpy.services.eip.extensions import EipOnHost
from zstackpy.services.eip.messages import GetNicEipsMsg, GetNicEipsReply
from zstackpy.services.host.extensions import ConnectingHost
from zstackpy.services.loadbalancer.messages import LoadBalancerTO
from zstackpy.services.networkservice.errors import NetworkServiceErr
from zstackpy.services.networkservice.extensions import (
    DHCP,
    DNS,
    EIP,
    LOAD_BALANCER,
    PORT_FORWARDING,
    SNAT,
    L3ServiceChange,
    ProviderInfo,
    VmServicesEvent,
)
from zstackpy.services.portforwarding.extensions import PortForwardingOnHost
from zstackpy.services.virtualrouter import agent
from zstackpy.services.virtualrouter.flows import offering_for
from zstackpy.services.virtualrouter.messages import (
    VIRTUAL_ROUTER,
    DestroyVirtualRouterMsg,
    RouterView,
    VirtualRouterErr,
)
from zstackpy.services.virtualrouter.routers import router_for, vm_kind
from zstackpy.services.virtualrouter.tables import (
    GuestNic,
    Tables,
    router_services,
    snat_to,
    tables_for,
)
from zstackpy.services.vm.extensions import VmNicSpec
from zstackpy.services.vm.messages import VmState

log = logging.getLogger(__name__)

# (add path, remove path, the key the entries go under), in the order they are added.
_KINDS = (
    (agent.ADD_DHCP, agent.REMOVE_DHCP, "dhcp"),
    (agent.CREATE_EIP, agent.REMOVE_EIP, "eips"),
    (agent.CREATE_PORT_FORWARDING, agent.REVOKE_PORT_FORWARDING, "rules"),
)


def _guest(event: VmServicesEvent, nic: VmNicSpec) -> GuestNic:
    return GuestNic(
        uuid=nic.uuid,
        vm_uuid=event.placement.vm_uuid,
        mac=nic.mac,
        ip=nic.ip,
        netmask=nic.netmask,
        gateway=nic.gateway,
        is_default=nic.is_default,
        hostname=event.placement.hostname,
    )


def _entries(tables: Tables, key: str) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = getattr(tables, key)
    return entries


class VirtualRouterProvider(Service):
    """Registered as the ``VirtualRouter`` NetworkServiceProviderBackend, EipBackend and
    PortForwardingBackend. A service only to get the node's context."""

    name = "virtualRouterProvider"

    def provider(self) -> ProviderInfo:
        return ProviderInfo(
            name="VirtualRouter",
            type=VIRTUAL_ROUTER,
            description="DHCP, DNS, SNAT, EIPs, port forwarding and load balancers in a "
            "virtual-router appliance VM per guest L3 network",
            service_types=(DHCP, DNS, SNAT, EIP, PORT_FORWARDING, LOAD_BALANCER),
        )

    def provider_type(self) -> str:
        return VIRTUAL_ROUTER

    # ----- L3 networks ------------------------------------------------------------------

    async def attach_to_l3(self, change: L3ServiceChange) -> None:
        # The router is made with the network's first VM; its zone must have an offering,
        # whose own networks are the router's outside, not a network it serves.
        offering, _account = await offering_for(self.ctx, change.l3_network_uuid)
        if change.l3_network_uuid in (
            offering.management_network_uuid,
            offering.public_network_uuid,
        ):
            raise ZError(
                VirtualRouterErr.BAD_OFFERING,
                f"L3 network {change.l3_network_uuid} is the management or public network of "
                f"virtual-router offering {offering.uuid}: a router cannot serve it",
                l3NetworkUuid=change.l3_network_uuid,
                offeringUuid=offering.uuid,
            )
        if SNAT in change.service_types:
            router = await router_for(self.ctx, change.l3_network_uuid, ensure=False)
            if router is not None:
                await agent.call(self.ctx, router, agent.SET_SNAT, {"snats": [snat_to(router)]})

    async def detach_from_l3(self, change: L3ServiceChange) -> None:
        l3_uuid = change.l3_network_uuid
        if EIP in change.service_types:
            reply = await self.ctx.bus.request(
                GetNicEipsMsg(l3_network_uuid=l3_uuid), GetNicEipsReply
            )
            if reply.eips:
                used = sorted(e.eip_uuid for e in reply.eips)
                raise ZError(
                    NetworkServiceErr.IN_USE,
                    f"EIPs {', '.join(used)} are attached to NICs of L3 network {l3_uuid}: "
                    "detach them first",
                    l3NetworkUuid=l3_uuid,
                    eipUuids=used,
                )
        left = await router_services(self.ctx, l3_uuid) - set(change.service_types)
        if not left:
            # Nothing left for the router to serve there: it goes, once the detach is done.
            await self.ctx.bus.send(
                DestroyVirtualRouterMsg(l3_network_uuid=l3_uuid, if_unused=True)
            )
        elif SNAT in change.service_types:
            router = await router_for(self.ctx, l3_uuid, ensure=False)
            if router is not None:
                await agent.call(self.ctx, router, agent.REMOVE_SNAT, {"snats": [snat_to(router)]})

    async def detached_from_l3(self, change: L3ServiceChange) -> None:
        return None

    # ----- VMs --------------------------------------------------------------------------

    async def _per_router(
        self, event: VmServicesEvent, *, ensure: bool
    ) -> list[tuple[RouterView, list[GuestNic], set[str]]]:
        cause = event.placement.cause
        if cause == "migrate":
            return []  # the router is on no host: a VM moving between hosts keeps its entries
        vm_type, state = await vm_kind(self.ctx, event.placement.vm_uuid)
        if vm_type is not None and vm_type != "UserVm":
            return []  # a router's own NICs: it is not its own client
        if cause == "failed" and state == VmState.MIGRATING:
            return []  # a migration that failed: the VM runs on where it was
        out = []
        for l3_uuid in sorted({n.l3_network_uuid for n in event.nics}):
            router = await router_for(self.ctx, l3_uuid, ensure=ensure)
            if router is None:
                continue
            nics = [_guest(event, n) for n in event.nics if n.l3_network_uuid == l3_uuid]
            services = {t for n in nics for t in event.services.get(n.uuid, ())}
            out.append((router, nics, services))
        return out

    async def vm_arriving(self, event: VmServicesEvent) -> None:
        sent: list[tuple[RouterView, str, str, list[dict[str, Any]]]] = []
        try:
            for router, nics, services in await self._per_router(event, ensure=True):
                await self._send(router, nics, services, sent)
        except BaseException:
            # The VM will not come: what went to its routers goes (best effort: the
            # refusal is the error that matters).
            for router, remove, key, entries in reversed(sent):
                try:
                    await agent.call(self.ctx, router, remove, {key: entries})
                except ZError as exc:
                    log.warning("undoing %s on router %s failed: %s", remove, router.uuid, exc)
            raise

    async def _send(
        self,
        router: RouterView,
        nics: list[GuestNic],
        services: set[str],
        sent: list[tuple[RouterView, str, str, list[dict[str, Any]]]],
    ) -> None:
        """A VM's entries to its router. A router that cannot be reached is brought back
        at once (restarted, or made anew) and the entries sent to it, rather than the VM's
        start failing until the monitor notices."""
        try:
            await self._add(router, await tables_for(self.ctx, router, nics, services), sent)
        except ZError as exc:
            if exc.code != AgentErr.UNREACHABLE:
                raise
            log.warning("virtual router %s unreachable: bringing it back", router.uuid)
            back = await router_for(self.ctx, router.guest_l3_network_uuid, unreachable=True)
            if back is None:
                raise
            await self._add(back, await tables_for(self.ctx, back, nics, services), sent)

    async def _add(
        self,
        router: RouterView,
        tables: Tables,
        sent: list[tuple[RouterView, str, str, list[dict[str, Any]]]],
    ) -> None:
        for add, remove, key in _KINDS:
            entries = _entries(tables, key)
            if entries:
                await agent.call(self.ctx, router, add, {key: entries})
                sent.append((router, remove, key, entries))

    async def vm_arrived(self, event: VmServicesEvent) -> None:
        return None

    async def vm_left(self, event: VmServicesEvent) -> None:
        failure: ZError | None = None
        for router, nics, services in await self._per_router(event, ensure=False):
            tables = await tables_for(self.ctx, router, nics, services)
            for _add, remove, key in reversed(_KINDS):
                entries = _entries(tables, key)
                if not entries:
                    continue
                try:
                    await agent.call(self.ctx, router, remove, {key: entries})
                except ZError as exc:
                    failure = failure or exc
        if failure is not None:
            raise failure

    async def host_connected(self, host: ConnectingHost) -> None:
        return None  # nothing of ours lives on hosts

    # ----- EipBackend / PortForwardingBackend -------------------------------------------

    async def _one(
        self, nic: VmNicSpec, vm_uuid: str, service: str
    ) -> tuple[RouterView, Tables] | None:
        router = await router_for(self.ctx, nic.l3_network_uuid)
        if router is None:
            return None
        guest = GuestNic(
            uuid=nic.uuid,
            vm_uuid=vm_uuid,
            mac=nic.mac,
            ip=nic.ip,
            netmask=nic.netmask,
            gateway=nic.gateway,
            is_default=nic.is_default,
        )
        return router, await tables_for(self.ctx, router, [guest], {service})

    async def apply_eip(self, eip: EipOnHost) -> None:
        found = await self._one(eip.nic, eip.vm_uuid, EIP)
        if found is not None:
            router, tables = found
            mine = [e for e in tables.eips if e["eipUuid"] == eip.eip.eip_uuid]
            await agent.call(self.ctx, router, agent.CREATE_EIP, {"eips": mine})

    async def revoke_eip(self, eip: EipOnHost) -> None:
        router = await router_for(self.ctx, eip.nic.l3_network_uuid, ensure=False)
        if router is not None:
            entry = {"eipUuid": eip.eip.eip_uuid, "vipIp": eip.eip.vip_ip}
            await agent.call(self.ctx, router, agent.REMOVE_EIP, {"eips": [entry]})

    async def apply_port_forwarding(self, rule: PortForwardingOnHost) -> None:
        found = await self._one(rule.nic, rule.vm_uuid, PORT_FORWARDING)
        if found is not None:
            router, tables = found
            mine = [r for r in tables.rules if r["uuid"] == rule.rule.rule_uuid]
            await agent.call(self.ctx, router, agent.CREATE_PORT_FORWARDING, {"rules": mine})

    async def revoke_port_forwarding(self, rule: PortForwardingOnHost) -> None:
        router = await router_for(self.ctx, rule.nic.l3_network_uuid, ensure=False)
        if router is not None:
            r = rule.rule
            entry = {
                "uuid": r.rule_uuid,
                "vipIp": r.vip_ip,
                "vipPortStart": r.vip_port_start,
                "vipPortEnd": r.vip_port_end,
                "protocolType": r.protocol_type,
            }
            await agent.call(self.ctx, router, agent.REVOKE_PORT_FORWARDING, {"rules": [entry]})

    # ----- LoadBalancerBackend ----------------------------------------------------------

    async def refresh_load_balancer(self, l3_network_uuid: str, lb: LoadBalancerTO) -> None:
        router = await router_for(self.ctx, l3_network_uuid)
        if router is not None:
            await agent.call(self.ctx, router, agent.REFRESH_LB, {"lbs": [lb.to_agent()]})

    async def delete_load_balancer(self, l3_network_uuid: str, lb: LoadBalancerTO) -> None:
        router = await router_for(self.ctx, l3_network_uuid, ensure=False)
        if router is not None:
            await agent.call(self.ctx, router, agent.DELETE_LB, {"lbs": [{"lbUuid": lb.lb_uuid}]})
