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

Userdata: on each bridge with a VM that has userdata, ``zs-nat-pre`` redirects TCP to
169.254.169.254:80 to the agent's metadata server (``metadata.py``, ``metadata_port``);
in the filter table ``zs-md`` (from ``INPUT``) drops what reaches that port without having
been sent to 169.254.169.254, so the server answers guests only. Its files
(``render_userdata``) are laid out by guest address, as EC2's metadata paths.
"""

from __future__ import annotations

import hashlib
import ipaddress
from dataclasses import dataclass

from agents.kvm.netrules import DhcpEntry, NetState, SgRule

CHAIN_PREFIX = "zs-"
SG_CHAIN = "zs-sg"
NAT_PRE = "zs-nat-pre"
NAT_POST = "zs-nat-post"
MD_CHAIN = "zs-md"
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


def _match(rule: SgRule) -> str:
    parts = []
    if rule.protocol != "ALL":
        parts.append(f"-p {rule.protocol.lower()}")
    if rule.ports is not None:
        low, high = rule.ports
        parts.append(f"--dport {low}" if low == high else f"--dport {low}:{high}")
    return " ".join(parts)


def render_security_groups(state: NetState, metadata_port: int | None = None) -> TableRules:
    """The filter table: security groups, and the metadata port's guard."""
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
    if state.userdata and metadata_port is not None:
        chains.append(MD_CHAIN)
        hooks.append(("INPUT", MD_CHAIN))
        port = f"-p tcp --dport {metadata_port}"
        # RETURN, not ACCEPT: the operator's INPUT rules still have their say.
        rules.append(f"-A {MD_CHAIN} {port} -m conntrack --ctorigdst {METADATA_IP}/32 -j RETURN")
        rules.append(f"-A {MD_CHAIN} {port} -j DROP")
    return TableRules("filter", tuple(chains), tuple(hooks), tuple(rules))


def render_nat(state: NetState, metadata_port: int | None = None) -> TableRules:
    rules: list[str] = []
    if metadata_port is not None:
        for bridge in sorted({u.bridge for u in state.userdata.values()}):
            rules.append(
                f"-A {NAT_PRE} -i {bridge} -d {METADATA_IP}/32 -p tcp --dport 80 "
                f"-j REDIRECT --to-ports {metadata_port}"
            )
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


def render_dnsmasq(state: NetState) -> dict[str, str]:
    """Files for a dnsmasq per bridge, by name: ``<bridge>.hosts`` (``dhcp-hostsfile``:
    MAC, address, host name), ``<bridge>.opts`` (``dhcp-optsfile``: each network's router,
    DNS servers and domain, by its tag; entries of one network share them, as the
    entries of one L3 network do) and ``<bridge>.dns`` (``addn-hosts``)."""
    by_bridge: dict[str, list[DhcpEntry]] = {}
    for mac in sorted(state.dhcp):
        entry = state.dhcp[mac]
        by_bridge.setdefault(entry.bridge, []).append(entry)
    files: dict[str, str] = {}
    for bridge, entries in sorted(by_bridge.items()):
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
            if e.dns:
                opts.append(f"tag:{tag},option:dns-server,{','.join(e.dns)}")
            if e.domain:
                opts.append(f"tag:{tag},option:domain-name,{e.domain}")
        for suffix, lines in (("hosts", hosts), ("opts", opts), ("dns", dns)):
            files[f"{bridge}.{suffix}"] = "".join(f"{line}\n" for line in lines)
    return files


def render_userdata(state: NetState) -> dict[str, bytes]:
    """The metadata server's files, by path under its root: ``<guest address>/latest/
    user-data`` and ``.../meta-data/instance-id`` (the VM's uuid), ``local-hostname``."""
    files: dict[str, bytes] = {}
    for ip in sorted(state.userdata, key=ipaddress.IPv4Address):
        entry = state.userdata[ip]
        base = f"{ip}/latest"
        files[f"{base}/user-data"] = entry.userdata
        files[f"{base}/meta-data/instance-id"] = entry.vm_uuid.encode()
        if entry.hostname:
            files[f"{base}/meta-data/local-hostname"] = entry.hostname.encode()
    return files


def dhcp_ranges(state: NetState) -> dict[str, tuple[str, ...]]:
    """Bridge -> the ``--dhcp-range`` of each network its entries are on, setting the
    network's tag (``static``: only the MACs of the hosts file get an address)."""
    by_bridge: dict[str, set[str]] = {}
    for entry in state.dhcp.values():
        network = _network(entry)
        tag = network_tag(network)
        if entry.netmask is None:
            item = f"set:{tag},{entry.ip},static"
        else:
            item = f"set:{tag},{network.network_address},static,{entry.netmask}"
        by_bridge.setdefault(entry.bridge, set()).add(item)
    return {bridge: tuple(sorted(items)) for bridge, items in sorted(by_bridge.items())}
