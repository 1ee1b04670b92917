"""Rule sets rendered from a ``NetState`` (pure functions, no IO): iptables tables for
security groups, EIPs and port forwarding, and dnsmasq files for DHCP and DNS. Rendering
is deterministic: the same state gives the same text, which is what lets the runner
(``netrunner.py``) skip work that is already done.

Security groups (filter table): chain ``zs-sg``, jumped to from ``FORWARD``, sends a
bridged packet to the chains of the VM NIC (``vmNicInternalName``) it enters or leaves
(``-m physdev``): ``zs-sg-<id>-in`` holds the Ingress rules and drops the rest;
``zs-sg-<id>-out`` holds the Egress rules and drops the rest when there are any, else
accepts (no egress rule: anything may leave). Replies of allowed connections pass
(conntrack). A rule whose ``remoteGroupUuid`` is set matches the addresses of that group's
members. IPv6 rules are not applied (this rule set is IPv4's).

EIPs and port forwarding (nat table): ``zs-nat-pre`` (from ``PREROUTING``) DNATs a VIP to
the NIC's address, ``zs-nat-post`` (from ``POSTROUTING``) SNATs the NIC's traffic to its
EIP's VIP.

Userdata and DHCP are not in these tables: the flat provider serves them from a network
namespace per L3 network (``dhcpns.py``), where the metadata server listens on
169.254.169.254:80 itself. Its files (``render_userdata``) are laid out by L3 network and
guest address, as EC2's metadata paths.
"""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Callable
from dataclasses import dataclass

from agents.kvm.netrules import DhcpEntry, NetState, SgRule

CHAIN_PREFIX = "zs-"
SG_CHAIN = "zs-sg"
NAT_PRE = "zs-nat-pre"
NAT_POST = "zs-nat-post"
MARKER = "zs-rules:"
METADATA_IP = "169.254.169.254"


@dataclass(frozen=True, slots=True)
class TableRules:
    """The chains this agent owns in one iptables table, and their rules.

    ``chains[0]`` is the dispatch chain; its first rule carries ``digest()`` in a comment,
    so the runner can tell from the live table whether this exact set is in place.
    ``hooks``: (built-in chain, owned chain) jumps that must exist."""

    table: str
    chains: tuple[str, ...]
    hooks: tuple[tuple[str, str], ...]
    rules: tuple[str, ...]

    def digest(self) -> str:
        text = "\n".join((self.table, *self.chains, *(f"{a}>{b}" for a, b in self.hooks)))
        return hashlib.sha256("\n".join((text, *self.rules)).encode()).hexdigest()[:24]

    def marker(self) -> str:
        return f'-A {self.chains[0]} -m comment --comment "{MARKER}{self.digest()}"'


def nic_chain(nic_uuid: str, direction: str) -> str:
    # iptables chain names stop at 28 characters: a hash of the uuid keeps them short.
    short = hashlib.sha256(nic_uuid.encode()).hexdigest()[:12]
    return f"{SG_CHAIN}-{short}-{'in' if direction == 'Ingress' else 'out'}"


_SERVICES_IN = ("-p udp --sport 67 --dport 68 -j ACCEPT",)
_SERVICES_OUT = (
    "-p udp --sport 68 --dport 67 -j ACCEPT",
    f"-d {METADATA_IP}/32 -p tcp --dport 80 -j ACCEPT",
)


def _match(rule: SgRule) -> str:
    parts = []
    if rule.protocol != "ALL":
        parts.append(f"-p {rule.protocol.lower()}")
    if rule.ports is not None:
        low, high = rule.ports
        parts.append(f"--dport {low}" if low == high else f"--dport {low}:{high}")
    return " ".join(parts)


def render_security_groups(state: NetState) -> TableRules:
    """The filter table: security groups."""
    chains = [SG_CHAIN]
    hooks = [("FORWARD", SG_CHAIN)]
    rules: list[str] = []
    for nic_uuid in sorted(state.rules):
        nic = state.rules[nic_uuid]
        chain_in, chain_out = nic_chain(nic_uuid, "Ingress"), nic_chain(nic_uuid, "Egress")
        chains += [chain_in, chain_out]
        bridged = "--physdev-is-bridged"
        rules.append(f"-A {SG_CHAIN} -m physdev --physdev-out {nic.device} {bridged} -j {chain_in}")
        rules.append(f"-A {SG_CHAIN} -m physdev --physdev-in {nic.device} {bridged} -j {chain_out}")
        for chain, direction, peer in ((chain_in, "Ingress", "-s"), (chain_out, "Egress", "-d")):
            rules.append(f"-A {chain} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT")
            # The network's own services, whatever the groups say: the DHCP server and the
            # metadata address are a port of the bridge (``dhcpns.py``), so their traffic
            # is bridged too, and a DHCP answer is no reply conntrack knows.
            services = _SERVICES_IN if direction == "Ingress" else _SERVICES_OUT
            rules += [f"-A {chain} {service}" for service in services]
            mine = [r for r in nic.rules if r.direction == direction]
            for rule in mine:
                if rule.remote_group is not None:
                    peers = [f"{a}/32" for a in state.members.get(rule.remote_group, ())]
                elif rule.cidr is not None:
                    peers = [rule.cidr]
                else:
                    peers = ["0.0.0.0/0"]
                match = _match(rule)
                for address in peers:
                    spec = " ".join(p for p in (f"{peer} {address}", match) if p)
                    rules.append(f"-A {chain} {spec} -j {rule.action}")
            # Ingress: only what a rule lets in. Egress: open until a rule says otherwise.
            closing = "DROP" if direction == "Ingress" or mine else "ACCEPT"
            rules.append(f"-A {chain} -j {closing}")
    return TableRules("filter", tuple(chains), tuple(hooks), tuple(rules))


def render_nat(state: NetState) -> TableRules:
    rules: list[str] = []
    for vip in sorted(state.nat, key=ipaddress.IPv4Address):
        eip = state.nat[vip]
        rules.append(f"-A {NAT_PRE} -d {vip}/32 -j DNAT --to-destination {eip.nic_ip}")
        rules.append(f"-A {NAT_POST} -s {eip.nic_ip}/32 -j SNAT --to-source {vip}")
    for key in sorted(state.forwards):
        fw = state.forwards[key]
        low, high = fw.vip_ports
        dport = f"{low}" if low == high else f"{low}:{high}"
        nlow, nhigh = fw.nic_ports
        to = f"{fw.nic_ip}:{nlow}" if nlow == nhigh else f"{fw.nic_ip}:{nlow}-{nhigh}"
        source = f"-s {fw.allowed_cidr} " if fw.allowed_cidr else ""
        rules.append(
            f"-A {NAT_PRE} -d {fw.vip}/32 {source}-p {fw.protocol} --dport {dport} "
            f"-j DNAT --to-destination {to}"
        )
    return TableRules(
        "nat",
        (NAT_PRE, NAT_POST),
        (("PREROUTING", NAT_PRE), ("POSTROUTING", NAT_POST)),
        tuple(rules),
    )


def _network(entry: DhcpEntry) -> ipaddress.IPv4Network:
    mask = entry.netmask or "255.255.255.255"  # no netmask: the bridge's own is used
    return ipaddress.IPv4Network(f"{entry.ip}/{mask}", strict=False)


def network_tag(network: ipaddress.IPv4Network) -> str:
    """The dnsmasq tag of a guest network: its ``--dhcp-range`` sets it, its options
    (router, DNS) are given by it. Options go by network, not by MAC: dnsmasq 2.90 crashes
    on SIGHUP when its hosts file sets tags and a lease exists."""
    return f"zs{int(network.network_address):08x}{network.prefixlen:02d}"


def by_bridge(entry: DhcpEntry) -> str:
    """The virtual router's grouping of DHCP entries: one dnsmasq per device."""
    return entry.bridge


def by_l3(entry: DhcpEntry) -> str:
    """The flat provider's: one dnsmasq per L3 network (its namespace, ``dhcpns.py``)."""
    return entry.l3 or entry.bridge


def render_dnsmasq(state: NetState, by: Callable[[DhcpEntry], str] = by_bridge) -> dict[str, str]:
    """The files of each dnsmasq (``by`` names it), by name: ``<name>.hosts``
    (``dhcp-hostsfile``: MAC, address, host name), ``<name>.opts`` (``dhcp-optsfile``:
    each network's router, DNS servers and domain, by its tag; entries of one network
    share them, as the entries of one L3 network do) and ``<name>.dns`` (``addn-hosts``).

    An entry with a DHCP server address (the flat provider's) also gives its guest a
    route to the metadata address through that server (option 121; a client that takes
    it ignores the router option, so the default route is in it too)."""
    grouped: dict[str, list[DhcpEntry]] = {}
    for mac in sorted(state.dhcp):
        entry = state.dhcp[mac]
        grouped.setdefault(by(entry), []).append(entry)
    files: dict[str, str] = {}
    for name, entries in sorted(grouped.items()):
        hosts, opts, dns = [], [], []
        networks: dict[ipaddress.IPv4Network, DhcpEntry] = {}
        for e in entries:
            networks.setdefault(_network(e), e)
            hosts.append(",".join(p for p in (e.mac, e.ip, e.hostname) if p))
            if e.hostname:
                names = [f"{e.hostname}.{e.domain}"] if e.domain else []
                dns.append(" ".join((e.ip, *names, e.hostname)))
        for network, e in sorted(networks.items()):
            tag = network_tag(network)
            if e.gateway:
                opts.append(f"tag:{tag},option:router,{e.gateway}")
            if e.server_ip:
                routes = [f"{METADATA_IP}/32,{e.server_ip}"]
                if e.gateway:
                    routes.append(f"0.0.0.0/0,{e.gateway}")
                opts.append(f"tag:{tag},option:classless-static-route,{','.join(routes)}")
            if e.dns:
                opts.append(f"tag:{tag},option:dns-server,{','.join(e.dns)}")
            if e.domain:
                opts.append(f"tag:{tag},option:domain-name,{e.domain}")
        for suffix, lines in (("hosts", hosts), ("opts", opts), ("dns", dns)):
            files[f"{name}.{suffix}"] = "".join(f"{line}\n" for line in lines)
    return files


def render_userdata(state: NetState) -> dict[str, bytes]:
    """The metadata server's files, by path under its root: ``<L3 uuid>/<guest address>/
    latest/user-data`` and ``.../meta-data/instance-id`` (the VM's uuid),
    ``local-hostname``. The listener in an L3's namespace serves that L3's directory
    only, so a guest never reads another network's files, whatever its address."""
    files: dict[str, bytes] = {}
    entries = sorted(
        state.userdata.values(), key=lambda u: (u.l3 or "", ipaddress.IPv4Address(u.vm_ip))
    )
    for entry in entries:
        base = f"{entry.l3 or '_'}/{entry.vm_ip}/latest"
        files[f"{base}/user-data"] = entry.userdata
        files[f"{base}/meta-data/instance-id"] = entry.vm_uuid.encode()
        if entry.hostname:
            files[f"{base}/meta-data/local-hostname"] = entry.hostname.encode()
    return files


def dhcp_ranges(
    state: NetState, by: Callable[[DhcpEntry], str] = by_bridge
) -> dict[str, tuple[str, ...]]:
    """Each dnsmasq (``by`` names it) -> the ``--dhcp-range`` of each network its entries
    are on, setting the network's tag (``static``: only the MACs of the hosts file get an
    address)."""
    grouped: dict[str, set[str]] = {}
    for entry in state.dhcp.values():
        network = _network(entry)
        tag = network_tag(network)
        if entry.netmask is None:
            item = f"set:{tag},{entry.ip},static"
        else:
            item = f"set:{tag},{network.network_address},static,{entry.netmask}"
        grouped.setdefault(by(entry), set()).add(item)
    return {name: tuple(sorted(items)) for name, items in sorted(grouped.items())}
