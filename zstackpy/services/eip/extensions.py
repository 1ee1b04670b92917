"""How a network-service provider NATs EIPs (``EipBackend``): the EIP service calls the
backend of the provider serving ``Eip`` on the NIC's L3 network when an EIP is attached to
or detached from a NIC whose VM is on a host. Providers apply a VM's EIPs on their own when
the VM arrives on a host and revoke them when it leaves (``NetworkServiceProviderBackend``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from zstackpy.services.eip.messages import EipView
from zstackpy.services.vm.extensions import VmHost, VmNicSpec


@dataclass(frozen=True, slots=True)
class EipOnHost:
    """One EIP on the host running its NIC's VM."""

    eip: EipView
    vm_uuid: str
    host: VmHost
    nic: VmNicSpec


class EipBackend(Protocol):
    def provider_type(self) -> str:
        """The ``type`` of the provider this backend is (e.g. "Flat")."""
        ...

    async def apply_eip(self, eip: EipOnHost) -> None:
        """NAT the VIP to the NIC on the host; raise ZError when the host refuses."""
        ...

    async def revoke_eip(self, eip: EipOnHost) -> None:
        """Undo ``apply_eip``; succeeds when the host does not hold it."""
        ...
