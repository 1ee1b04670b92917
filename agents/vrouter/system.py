"""The appliance's network stack: programs run inside the agent's network namespace
(``ip netns exec``; none: the appliance's own), its NICs found by MAC, brought up and
given the addresses the state wants.

Addresses: the agent removes only addresses it put there itself (``added``, kept with
the state), never the management address the image configured or anyone else's."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from agents.runtime import AgentCommandError
from agents.runtime.commands import run_command
from agents.vrouter.router import RouterState

_PACKAGES = {"ip": "iproute2", "sysctl": "procps", "dnsmasq": "dnsmasq-base", "haproxy": "haproxy"}


class Shell:
    def __init__(self, netns: str = "") -> None:
        self.prefix: tuple[str, ...] = ("ip", "netns", "exec", netns) if netns else ()

    async def run(self, *argv: str, stdin: str | None = None, in_ns: bool = True) -> str:
        """``argv``'s stdout; AgentCommandError (with its stderr and exit code) when it
        fails or is not installed."""
        command = (*self.prefix, *argv) if in_ns else argv
        return await run_command(
            command, argv[0], stdin=stdin, where="this appliance", packages=_PACKAGES
        )


@dataclass(frozen=True, slots=True)
class Device:
    name: str
    mac: str
    addresses: frozenset[str]  # "a.b.c.d/len"


async def devices(shell: Shell) -> dict[str, Device]:
    """The namespace's interfaces, by MAC."""
    found: dict[str, Device] = {}
    raw: list[dict[str, Any]] = json.loads(await shell.run("ip", "-j", "address", "show"))
    for link in raw:
        mac = str(link.get("address") or "").lower()
        addresses = frozenset(
            f"{a['local']}/{a['prefixlen']}"
            for a in link.get("addr_info", [])
            if a.get("family") == "inet"
        )
        if mac and link.get("ifname") != "lo":
            found[mac] = Device(str(link["ifname"]), mac, addresses)
    return found


def wanted_addresses(state: RouterState) -> dict[str, set[str]]:
    """Addresses by NIC role: the router's own, the guest gateway's, the VIPs' (/32 on
    the public NIC: the router answers ARP for them and haproxy binds them). A public
    NIC's ``gateway`` is not held: it is the default route."""
    wanted: dict[str, set[str]] = {}
    for role, nic in state.nics.items():
        if nic.mac is None:
            continue  # the management NIC: the image configured it
        prefix = 32 if nic.prefix is None else nic.prefix
        mine = {f"{nic.ip}/{prefix}"}
        if role == "guest" and nic.gateway is not None:
            mine.add(f"{nic.gateway}/{prefix}")
        if role == "public":
            mine |= {f"{vip}/32" for vip in state.vips() if vip != nic.ip}
        wanted[role] = mine
    return wanted


def resolve(state: RouterState, live: dict[str, Device]) -> dict[str, Device]:
    """The device of each NIC ``/init`` gave a MAC; AgentCommandError naming the
    interfaces there are when one is missing."""
    found: dict[str, Device] = {}
    for role, nic in sorted(state.nics.items()):
        if nic.mac is None:
            continue
        device = live.get(nic.mac)
        if device is None:
            raise AgentCommandError(
                f"the {role} NIC {nic.mac} is not an interface of this appliance",
                role=role,
                mac=nic.mac,
                interfaces=sorted(d.name for d in live.values()),
            )
        found[role] = device
    return found


async def apply_interfaces(
    shell: Shell,
    state: RouterState,
    roles: dict[str, Device],
    added: dict[str, list[str]],
    live: dict[str, Device],
) -> dict[str, list[str]]:
    """Bring the NICs (``resolve``'s ``roles``) up with their addresses. ``added``: by
    device, what the agent put there before; returns the new ``added``."""
    now_added: dict[str, list[str]] = {}
    for role, addresses in sorted(wanted_addresses(state).items()):
        device = roles[role]
        await shell.run("ip", "link", "set", device.name, "up")
        for address in sorted(addresses - device.addresses):
            await shell.run("ip", "address", "add", address, "dev", device.name)
        now_added[device.name] = sorted(addresses)
    # What the agent added and no longer wants goes, on any device it still has.
    by_name = {d.name: d for d in live.values()}
    for name, previous in sorted(added.items()):
        keep = set(now_added.get(name, []))
        held = by_name[name].addresses if name in by_name else frozenset()
        for address in sorted((set(previous) - keep) & held):
            await shell.run("ip", "address", "del", address, "dev", name)
    public = state.nic("public")
    if public is not None and public.gateway is not None and "public" in roles:
        via, dev = public.gateway, roles["public"].name
        await shell.run("ip", "route", "replace", "default", "via", via, "dev", dev)
    return now_added


async def enable_forwarding(shell: Shell) -> None:
    await shell.run("sysctl", "-q", "-w", "net.ipv4.ip_forward=1")
