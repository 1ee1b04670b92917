"""The network-service provider extension point.

A provider (Flat: on the KVM host through its agent; SecurityGroup: rules on the host;
VirtualRouter, later: inside an appliance VM) serves some service types (DHCP, DNS, Eip,
SecurityGroup, SNAT, PortForwarding, LoadBalancer, ...). ``AttachNetworkServiceToL3Network``
chooses, per L3 network and type, which provider serves it. The network-service plugin then
tells each provider when VMs with NICs on its networks arrive on or leave hosts, and when
hosts reconnect; per-resource services (EIPs, security-group rules) call the provider's
backend for their type (``services.eip.extensions.EipBackend``, ...) themselves.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from zstackpy.services.host.extensions import ConnectingHost
from zstackpy.services.vm.extensions import VmNicSpec, VmPlacementEvent

# ZStack's service type names.
DHCP = "DHCP"
DNS = "DNS"
USERDATA = "Userdata"
EIP = "Eip"
SECURITY_GROUP = "SecurityGroup"
SNAT = "SNAT"
PORT_FORWARDING = "PortForwarding"
LOAD_BALANCER = "LoadBalancer"


@dataclass(frozen=True, slots=True)
class ProviderInfo:
    """What a provider is: its row in NetworkServiceProviderVO (one per ``type``)."""

    name: str
    type: str
    description: str
    service_types: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class L3ServiceChange:
    """Service types of one provider being attached to (or detached from) an L3 network."""

    l3_network_uuid: str
    provider_uuid: str
    service_types: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class VmServicesEvent:
    """A VM arriving on or leaving a host, with its NICs whose networks this provider
    serves and the types it serves on each (``services[nic uuid]``)."""

    placement: VmPlacementEvent
    nics: tuple[VmNicSpec, ...]
    services: dict[str, tuple[str, ...]]


class NetworkServiceProviderBackend(Protocol):
    """One provider. Every hook runs on the node handling the change, in the queue of the
    resource that changes (the L3 network, the VM, the host); raise ZError to refuse (an
    attach, a detach, a VM's arrival): the change then does not happen."""

    def provider(self) -> ProviderInfo: ...

    async def attach_to_l3(self, change: L3ServiceChange) -> None:
        """Before the types are recorded for the network (a virtual router would create its
        appliance here)."""
        ...

    async def detach_from_l3(self, change: L3ServiceChange) -> None:
        """Before the types are removed; refuse while resources still use them."""
        ...

    async def detached_from_l3(self, change: L3ServiceChange) -> None:
        """After the types were removed: take off the hosts (or appliances) what they held
        for them. Best effort: a failure is logged, the detach stands (a host that missed
        it is put right at its next reconnect)."""
        ...

    async def vm_arriving(self, event: VmServicesEvent) -> None:
        """Before the VM starts on (or migrates to) the host: put its services there."""
        ...

    async def vm_arrived(self, event: VmServicesEvent) -> None: ...

    async def vm_left(self, event: VmServicesEvent) -> None:
        """The VM is gone from the host (or never arrived): take its services off."""
        ...

    async def host_connected(self, host: ConnectingHost) -> None:
        """In the host's queue at the end of a (re)connect: put back what the host should
        hold. Call its agent through ``ctx.agents`` with ``host.agent`` (a message to the
        host's queue would wait for this very connect)."""
        ...
