"""The KVM agent's choice of domain type and emulator from libvirt's capabilities
(agents/kvm/capabilities.py)."""

from __future__ import annotations

import pytest

from agents.kvm.capabilities import GuestSupport, guest_support
from agents.runtime import AgentCommandError


def caps(host_arch: str, *guests: tuple[str, str, tuple[str, ...]]) -> str:
    """Capabilities XML: one guest per (os_type, arch, domain types)."""
    parts = [f"<capabilities><host><cpu><arch>{host_arch}</arch></cpu></host>"]
    for os_type, arch, types in guests:
        domains = "".join(f"<domain type='{t}'/>" for t in types)
        parts.append(
            f"<guest><os_type>{os_type}</os_type><arch name='{arch}'>"
            f"<emulator>/usr/bin/qemu-system-{arch}</emulator>{domains}</arch></guest>"
        )
    return "".join(parts) + "</capabilities>"


X86_QEMU = "/usr/bin/qemu-system-x86_64"


def test_kvm_is_chosen_when_libvirt_offers_it_for_the_host_arch() -> None:
    offered = caps("x86_64", ("hvm", "i686", ("qemu", "kvm")), ("hvm", "x86_64", ("qemu", "kvm")))
    assert guest_support(offered) == GuestSupport("kvm", "x86_64", X86_QEMU)


def test_full_emulation_when_libvirt_offers_no_kvm() -> None:
    # What libvirt lists on a host without usable KVM, /dev/kvm present or not.
    offered = caps("x86_64", ("hvm", "x86_64", ("qemu",)))
    assert guest_support(offered) == GuestSupport("qemu", "x86_64", X86_QEMU)


def test_the_setting_forces_a_type_libvirt_offers_and_refuses_one_it_does_not() -> None:
    offered = caps("x86_64", ("hvm", "x86_64", ("qemu", "kvm")))
    assert guest_support(offered, "qemu").domain_type == "qemu"
    with pytest.raises(AgentCommandError, match="cannot run domains of type 'kvm'") as refused:
        guest_support(caps("x86_64", ("hvm", "x86_64", ("qemu",))), "kvm")
    assert refused.value.details == {"domainType": "kvm", "offered": ["qemu"]}


def test_a_domain_types_own_emulator_wins_over_the_archs() -> None:
    offered = (
        "<capabilities><host><cpu><arch>x86_64</arch></cpu></host><guest><os_type>hvm"
        "</os_type><arch name='x86_64'><emulator>/usr/bin/qemu-system-x86_64</emulator>"
        "<domain type='qemu'/><domain type='kvm'><emulator>/usr/bin/kvm</emulator></domain>"
        "</arch></guest></capabilities>"
    )
    assert guest_support(offered) == GuestSupport("kvm", "x86_64", "/usr/bin/kvm")
    assert guest_support(offered, "qemu").emulator == "/usr/bin/qemu-system-x86_64"


def test_libvirts_test_driver_gets_its_own_type() -> None:
    offered = caps("i686", ("hvm", "i686", ("test",)), ("xen", "i686", ("test",)))
    assert guest_support(offered).domain_type == "test"


def test_a_host_whose_arch_has_no_hvm_guest_is_refused() -> None:
    offered = caps("aarch64", ("hvm", "x86_64", ("qemu",)), ("xen", "aarch64", ("xen",)))
    with pytest.raises(AgentCommandError, match="no hvm guest of this host's architecture"):
        guest_support(offered)
