"""The flat provider's network namespace per L3 network: where that network's DHCP server
(dnsmasq) and its metadata listener run, so the host's bridge holds no address and two
networks never share a server.

Each namespace (``<prefix><L3 uuid>``) is joined to the L3's bridge by a veth pair: the
host's end (``zsv<hash>``) is a port of the bridge, the namespace's end (``zsi<hash>``)
holds the DHCP server's address in the guests' network (``dhcpServerIp``, which the node
allocated from the L3) and, while a guest of the network has userdata, 169.254.169.254/32.
Guests reach the metadata address through the DHCP server (the route dnsmasq gives them,
``netrender.render_dnsmasq``).

``wanted`` (pure) says which namespaces a state needs; ``Namespaces`` brings the host
there, comparing with what is live (``ip -j``), so applying twice is applying once, and an
agent restarted finds its namespaces (by their prefix) and keeps them.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import logging
from dataclasses import dataclass
from typing import Any

from agents.kvm.netrender import METADATA_IP
from agents.kvm.netrules import NetState
from agents.runtime import AgentCommandError
from agents.runtime.commands import run_command

log = logging.getLogger(__name__)

_PACKAGES = {"ip": "iproute2"}


@dataclass(frozen=True, slots=True)
class L3Namespace:
    """What one L3 network's namespace holds."""

    l3: str
    name: str  # the namespace
    bridge: str
    outer: str  # the veth end on the bridge, in the host's namespace
    inner: str  # the veth end in the L3's namespace
    addresses: tuple[str, ...]  # CIDRs on ``inner``
    serves_dhcp: bool
    serves_metadata: bool


def veth_names(l3: str) -> tuple[str, str]:
    # Interface names stop at 15 characters: a hash of the uuid keeps them short.
    short = hashlib.sha256(l3.encode()).hexdigest()[:11]
    return f"zsv{short}", f"zsi{short}"


def wanted(state: NetState, prefix: str) -> dict[str, L3Namespace]:
    """L3 uuid -> its namespace, for every L3 network with DHCP entries or userdata.
    AgentCommandError when the state cannot be served this way (an entry without its L3
    or DHCP server address, two bridges or two server addresses for one L3)."""
    bridges: dict[str, str] = {}
    servers: dict[str, str] = {}
    metadata: set[str] = set()

    def bridge_of(l3: str, bridge: str, where: str) -> None:
        held = bridges.setdefault(l3, bridge)
        if held != bridge:
            raise AgentCommandError(
                f"{where}: L3 network {l3} is on bridge {held} on this host, not {bridge}",
                l3NetworkUuid=l3,
            )

    for entry in state.dhcp.values():
        where = f"the DHCP entry of {entry.mac}"
        if entry.l3 is None or entry.server_ip is None or entry.netmask is None:
            raise AgentCommandError(
                f"{where}: the flat provider's DHCP needs l3NetworkUuid, dhcpServerIp and netmask"
            )
        bridge_of(entry.l3, entry.bridge, where)
        network = ipaddress.IPv4Network(f"{entry.ip}/{entry.netmask}", strict=False)
        server = ipaddress.IPv4Address(entry.server_ip)
        if server not in network or entry.server_ip == entry.ip:
            raise AgentCommandError(
                f"{where}: dhcpServerIp {entry.server_ip} is not another address of {network}",
                dhcpServerIp=entry.server_ip,
            )
        address = f"{entry.server_ip}/{network.prefixlen}"
        if servers.setdefault(entry.l3, address) != address:
            raise AgentCommandError(
                f"{where}: L3 network {entry.l3} has DHCP server {servers[entry.l3]} on "
                f"this host, not {address}",
                l3NetworkUuid=entry.l3,
            )
    for data in state.userdata.values():
        if data.l3 is None:
            raise AgentCommandError(f"the userdata of VM {data.vm_uuid} needs l3NetworkUuid")
        bridge_of(data.l3, data.bridge, f"the userdata of VM {data.vm_uuid}")
        metadata.add(data.l3)
    namespaces = {}
    for l3, bridge in sorted(bridges.items()):
        outer, inner = veth_names(l3)
        addresses = [servers[l3]] if l3 in servers else []
        if l3 in metadata:
            addresses.append(f"{METADATA_IP}/32")
        namespaces[l3] = L3Namespace(
            l3=l3,
            name=f"{prefix}{l3}",
            bridge=bridge,
            outer=outer,
            inner=inner,
            addresses=tuple(addresses),
            serves_dhcp=l3 in servers,
            serves_metadata=l3 in metadata,
        )
    return namespaces


class Namespaces:
    """Creates, repairs and removes the L3 namespaces of this host. ``host_netns``: the
    namespace the bridges are in (the tests' stand-in for the host; "": the host's own).
    Not concurrent: the network commands' lock serialises the calls."""

    def __init__(self, prefix: str, host_netns: str = "") -> None:
        self.prefix = prefix
        self._host: tuple[str, ...] = ("ip", "netns", "exec", host_netns) if host_netns else ()
        self._applied: dict[str, L3Namespace] = {}  # name -> what was last put in place

    async def _run(self, *argv: str, netns: str | None = None) -> str:
        """``argv`` in the host's namespace, or in ``netns``; ``ip netns`` itself runs
        where the agent is (``ip netns exec`` gives its command a mount namespace of its
        own, where a namespace added would not be seen by anyone else)."""
        if argv[:2] == ("ip", "netns"):
            prefix: tuple[str, ...] = ()
        elif netns is None:
            prefix = self._host
        else:
            prefix = ("ip", "netns", "exec", netns)
        return await run_command((*prefix, *argv), argv[0], where="this host", packages=_PACKAGES)

    async def _json(self, *argv: str, netns: str | None = None) -> list[dict[str, Any]]:
        """``ip -j`` output; [] when the device (or namespace) is not there."""
        try:
            text = await self._run("ip", "-j", *argv, netns=netns)
        except AgentCommandError as exc:
            if "does not exist" in exc.error or "Cannot open" in exc.error:
                return []
            raise
        parsed = json.loads(text or "[]")
        return parsed if isinstance(parsed, list) else []

    async def live(self) -> set[str]:
        """The namespaces of this agent (by their prefix) that exist now."""
        names = await self._run("ip", "netns", "list")
        found = {line.split()[0] for line in names.splitlines() if line.strip()}
        return {n for n in found if n.startswith(self.prefix)}

    async def sync(
        self, namespaces: dict[str, L3Namespace], *, full: bool = False
    ) -> tuple[set[str], set[str]]:
        """Bring the host to ``namespaces`` (L3 uuid ->); (names made now, names
        removed). Without ``full`` only what changed since the last sync is looked at
        (each command would otherwise ask ``ip`` about every network of the host);
        ``full`` compares everything with what is live (at the agent's start)."""
        by_name = {ns.name: ns for ns in namespaces.values()}
        live = await self.live()
        if not full:
            # What is live but never applied by this run is someone else's business
            # until the next full sync; what was applied and is gone is made again.
            live_ours = live & set(self._applied)
            stale = set(self._applied) - set(by_name)
        else:
            live_ours = live
            stale = live - set(by_name)
        removed = set()
        for name in sorted(stale):
            await self.remove(name)
            removed.add(name)
        made = set()
        for name, ns in sorted(by_name.items()):
            if not full and name in live_ours and self._applied.get(name) == ns:
                continue
            if await self._ensure(ns, exists=name in live):
                made.add(name)
            self._applied[name] = ns
        return made, removed

    async def remove(self, name: str) -> None:
        """The namespace goes, and its veth pair. Callers stop what runs in it first."""
        self._applied.pop(name, None)
        # The pair goes first, by its host end (deleting one end deletes the other): a
        # deleted namespace's devices are only cleaned up later by the kernel.
        outer, _ = veth_names(name.removeprefix(self.prefix))
        if await self._json("link", "show", "dev", outer):
            await self._run("ip", "link", "delete", outer)
        try:
            await self._run("ip", "netns", "delete", name)
        except AgentCommandError as exc:
            if "No such file" not in exc.error:
                raise
        log.info("removed L3 namespace %s", name)

    async def _ensure(self, ns: L3Namespace, *, exists: bool) -> bool:
        """Make or repair ``ns``; True when the namespace itself was made now."""
        if not exists:
            await self._run("ip", "netns", "add", ns.name)
            await self._run("ip", "link", "set", "lo", "up", netns=ns.name)
            log.info("made L3 namespace %s for bridge %s", ns.name, ns.bridge)
        outer = await self._json("link", "show", "dev", ns.outer)
        if not outer:
            # Half a pair cannot be: an inner end left alone goes before a new pair.
            if await self._json("link", "show", "dev", ns.inner, netns=ns.name):
                await self._run("ip", "link", "delete", ns.inner, netns=ns.name)
            await self._run(
                "ip", "link", "add", ns.outer, "type", "veth",
                "peer", "name", ns.inner, "netns", ns.name,
            )  # fmt: skip
            outer = await self._json("link", "show", "dev", ns.outer)
        if outer[0].get("master") != ns.bridge:
            if not await self._json("link", "show", "dev", ns.bridge):
                raise AgentCommandError(
                    f"bridge {ns.bridge} of L3 network {ns.l3} does not exist on this host",
                    bridgeName=ns.bridge,
                    l3NetworkUuid=ns.l3,
                )
            await self._run("ip", "link", "set", ns.outer, "master", ns.bridge)
        if "UP" not in outer[0].get("flags", []):
            await self._run("ip", "link", "set", ns.outer, "up")
        inner = await self._json("-4", "addr", "show", "dev", ns.inner, netns=ns.name)
        held = {
            f"{a['local']}/{a['prefixlen']}"
            for link in inner
            for a in link.get("addr_info", [])
            if "local" in a
        }
        for cidr in sorted(held - set(ns.addresses)):
            await self._run("ip", "addr", "delete", cidr, "dev", ns.inner, netns=ns.name)
        for cidr in ns.addresses:
            if cidr not in held:
                await self._run("ip", "addr", "add", cidr, "dev", ns.inner, netns=ns.name)
        if not inner or "UP" not in inner[0].get("flags", []):
            await self._run("ip", "link", "set", ns.inner, "up", netns=ns.name)
        return not exists
