"""How a network-service provider applies port-forwarding rules (``PortForwardingBackend``):
the port-forwarding service calls the backend of the provider serving ``PortForwarding``
on the NIC's L3 network when a rule is attached to or detached from a NIC whose VM is on a
host. Providers apply a VM's rules themselves when it arrives on or leaves a host."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from zstackpy.services.portforwarding.messages import PortForwardingView
from zstackpy.services.vm.extensions import VmHost, VmNicSpec


@dataclass(frozen=True, slots=True)
class PortForwardingOnHost:
    rule: PortForwardingView
    vm_uuid: str
    host: VmHost
    nic: VmNicSpec


class PortForwardingBackend(Protocol):
    def provider_type(self) -> str: ...

    async def apply_port_forwarding(self, rule: PortForwardingOnHost) -> None:
        """Forward the VIP's ports to the NIC's; raise ZError when the host refuses."""
        ...

    async def revoke_port_forwarding(self, rule: PortForwardingOnHost) -> None:
        """Undo ``apply_port_forwarding``; succeeds when the host does not hold it."""
        ...
