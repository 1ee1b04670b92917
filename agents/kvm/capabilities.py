"""What guests this host runs, read from libvirt's capabilities XML (pure).

The domain type comes from what libvirt lists for the host's architecture, not from
whether ``/dev/kvm`` exists: libvirt lists ``kvm`` only when its QEMU can open the device
and use it (module loaded, permissions, a QEMU built with KVM), so a host where the device
node exists but is unusable still gets full emulation (``qemu``, QEMU's TCG) instead of
VMs that fail to start.
"""

from __future__ import annotations

from dataclasses import dataclass

from agents.kvm.libvirt_xml import parse
from agents.runtime import AgentCommandError

# Hardware virtualisation first; full emulation when there is none.
PREFERRED_TYPES = ("kvm", "qemu")


@dataclass(frozen=True, slots=True)
class GuestSupport:
    """``domain_type``: ``kvm``, ``qemu`` or ``test`` (libvirt's test driver);
    ``emulator``: the QEMU binary libvirt lists for that type (None when it lists none)."""

    domain_type: str
    arch: str
    emulator: str | None


def guest_support(capabilities: str, wanted_type: str = "") -> GuestSupport:
    """The domain type, architecture and emulator for this host's VMs: ``wanted_type``
    (the ``domain_type`` setting) when given, else ``kvm`` when libvirt offers it, else
    ``qemu``, else the first type libvirt lists. Raises AgentCommandError when libvirt
    runs no full-virtualisation guest of the host's architecture, or not ``wanted_type``."""
    caps = parse(capabilities)
    host_arch = caps.findtext("host/cpu/arch") or "x86_64"
    for guest in caps.iterfind("guest"):
        arch = guest.find("arch")
        if guest.findtext("os_type") != "hvm" or arch is None or arch.get("name") != host_arch:
            continue
        emulators: dict[str, str | None] = {}
        for domain in arch.iterfind("domain"):
            kind = domain.get("type")
            if kind:
                # A domain type may name its own emulator; otherwise the arch's serves.
                emulators[kind] = domain.findtext("emulator") or arch.findtext("emulator")
        if wanted_type:
            if wanted_type not in emulators:
                raise AgentCommandError(
                    f"this host cannot run domains of type {wanted_type!r} (the domain_type "
                    f"setting); libvirt offers {sorted(emulators)}",
                    domainType=wanted_type,
                    offered=sorted(emulators),
                )
            chosen = wanted_type
        else:
            preferred = [t for t in PREFERRED_TYPES if t in emulators]
            chosen = preferred[0] if preferred else next(iter(emulators), "")
        if chosen:
            return GuestSupport(chosen, host_arch, emulators[chosen])
    raise AgentCommandError(
        f"libvirt runs no hvm guest of this host's architecture {host_arch} "
        "(is QEMU for it installed?)",
        arch=host_arch,
    )
