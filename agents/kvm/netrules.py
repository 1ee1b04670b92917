"""What the flat network services hold on a host: ``NetState``, what the node told the
agent (the same tables the simulator keeps: ``simulator/kvm_network.py``), and the pure
functions that make a new state from a command. Every command is validated whole into a
new state before anything is applied, so bad input changes nothing; ``netrender.py``
turns a state into rule sets.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
from dataclasses import dataclass, field, replace
from typing import Any

from agents.runtime import AgentCommandError

_MAC = re.compile(r"[0-9a-f]{2}(:[0-9a-f]{2}){5}")
_IFNAME = re.compile(r"[A-Za-z0-9_.-]{1,15}")
_HOSTNAME = re.compile(r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
_DOMAIN = re.compile(r"[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?")
_UUID = re.compile(r"[A-Za-z0-9-]{1,64}")  # it names files and namespaces
PROTOCOLS = frozenset({"TCP", "UDP", "ICMP", "ALL"})


# ----- validation ------------------------------------------------------------------------


def _str(entry: dict[str, Any], name: str, where: str) -> str:
    value = entry.get(name)
    if not isinstance(value, str) or not value:
        raise AgentCommandError(f"{where}: needs a non-empty string {name!r}", field=name)
    return value


def _ipv4(entry: dict[str, Any], name: str, where: str) -> str:
    value = _str(entry, name, where)
    try:
        return str(ipaddress.IPv4Address(value))
    except ValueError:
        raise AgentCommandError(f"{where}: {name} {value!r} is not an IPv4 address") from None


def _optional_ipv4(entry: dict[str, Any], name: str, where: str) -> str | None:
    return _ipv4(entry, name, where) if entry.get(name) not in (None, "") else None


def _cidr(value: object, where: str) -> str:
    try:
        return str(ipaddress.IPv4Network(str(value), strict=False))
    except ValueError:
        raise AgentCommandError(f"{where}: {value!r} is not an IPv4 CIDR") from None


def _ifname(entry: dict[str, Any], name: str, where: str) -> str:
    value = _str(entry, name, where)
    if not _IFNAME.fullmatch(value):
        raise AgentCommandError(f"{where}: {name} {value!r} is not an interface name")
    return value


def _optional_uuid(entry: dict[str, Any], name: str, where: str) -> str | None:
    value = entry.get(name)
    if value in (None, ""):
        return None
    if not isinstance(value, str) or not _UUID.fullmatch(value):
        raise AgentCommandError(f"{where}: {name} {value!r} is not a uuid", field=name)
    return value


def _mac(entry: dict[str, Any], name: str, where: str) -> str:
    value = _str(entry, name, where).lower()
    if not _MAC.fullmatch(value):
        raise AgentCommandError(f"{where}: {name} {value!r} is not a MAC address")
    return value


def _port(value: object, name: str, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 65536:
        raise AgentCommandError(f"{where}: {name} {value!r} is not a port (1-65535)")
    return value


def _ports(start: object, end: object, where: str) -> tuple[int, int]:
    low = _port(start, "start port", where)
    high = low if end in (None, "") else _port(end, "end port", where)
    if high < low:
        raise AgentCommandError(f"{where}: port range {low}-{high} runs backwards")
    return low, high


# ----- the state -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SgRule:
    direction: str  # Ingress / Egress
    protocol: str  # TCP / UDP / ICMP / ALL
    ports: tuple[int, int] | None
    cidr: str | None
    remote_group: str | None
    action: str  # ACCEPT / DROP


@dataclass(frozen=True, slots=True)
class NicRules:
    nic_uuid: str
    device: str  # the VM NIC's tap device on the bridge
    rules: tuple[SgRule, ...]
    raw: dict[str, Any] = field(compare=False, hash=False)


@dataclass(frozen=True, slots=True)
class Eip:
    eip_uuid: str
    vip: str
    nic_ip: str
    raw: dict[str, Any] = field(compare=False, hash=False)


@dataclass(frozen=True, slots=True)
class Forward:
    uuid: str
    vip: str
    protocol: str  # tcp / udp
    vip_ports: tuple[int, int]
    nic_ip: str
    nic_ports: tuple[int, int]
    allowed_cidr: str | None
    raw: dict[str, Any] = field(compare=False, hash=False)

    @property
    def key(self) -> str:
        return f"{self.vip}:{self.protocol}:{self.vip_ports[0]}-{self.vip_ports[1]}"


@dataclass(frozen=True, slots=True)
class DhcpEntry:
    mac: str
    ip: str
    netmask: str | None
    gateway: str | None
    hostname: str | None
    dns: tuple[str, ...]
    domain: str | None
    bridge: str
    # The flat provider's: the L3 network, and the address its DHCP server holds there
    # (the virtual router's entries have neither: its own NIC serves them).
    l3: str | None
    server_ip: str | None
    raw: dict[str, Any] = field(compare=False, hash=False)


@dataclass(frozen=True, slots=True)
class Userdata:
    """What the metadata address serves the VM whose NIC has ``vm_ip`` on ``bridge``."""

    vm_uuid: str
    vm_ip: str
    bridge: str
    l3: str | None
    hostname: str | None
    userdata: bytes  # the decoded ``userdataList``, one after another
    raw: dict[str, Any] = field(compare=False, hash=False)

    @property
    def key(self) -> str:
        # By network and address: each network's metadata listener tells its guests
        # apart by address, so one address may be served on two networks.
        return f"{self.l3 or ''}/{self.vm_ip}"


@dataclass(frozen=True, slots=True)
class NetState:
    """What the node told this host; every change makes a new one."""

    rules: dict[str, NicRules] = field(default_factory=dict)  # nic uuid ->
    members: dict[str, tuple[str, ...]] = field(default_factory=dict)  # group -> addresses
    nat: dict[str, Eip] = field(default_factory=dict)  # vip ->
    forwards: dict[str, Forward] = field(default_factory=dict)  # Forward.key ->
    dhcp: dict[str, DhcpEntry] = field(default_factory=dict)  # mac ->
    userdata: dict[str, Userdata] = field(default_factory=dict)  # Userdata.key ->

    def to_json(self) -> dict[str, Any]:
        """The commands' own entries: what ``from_json`` reads back after a restart."""
        return {
            "ruleTOs": [r.raw for r in self.rules.values()],
            "securityGroupMembers": {k: list(v) for k, v in self.members.items()},
            "eips": [e.raw for e in self.nat.values()],
            "rules": [f.raw for f in self.forwards.values()],
            "dhcp": [d.raw for d in self.dhcp.values()],
            "userdata": [u.raw for u in self.userdata.values()],
        }

    @classmethod
    def from_json(cls, saved: dict[str, Any]) -> NetState:
        state = with_security_groups(
            cls(), entries(saved, "ruleTOs"), saved.get("securityGroupMembers") or {}
        )
        state = with_eips(state, entries(saved, "eips"), rebuild=True)
        state = with_forwards(state, entries(saved, "rules"), rebuild=True)
        state = with_userdata(state, entries(saved, "userdata"), rebuild=True)
        return with_dhcp(state, entries(saved, "dhcp"), rebuild=True)


def entries(cmd: dict[str, Any], name: str) -> list[dict[str, Any]]:
    """The list of objects ``cmd[name]`` (absent: none)."""
    items = cmd.get(name) or []
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise AgentCommandError(f"{name} must be a list of objects", field=name)
    return items


def commanded(cmd: dict[str, Any], single: str, many: str) -> list[dict[str, Any]]:
    """The entries of a command that carries one (``single``) or a batch (``many``)."""
    one = cmd.get(single)
    if isinstance(one, dict):
        return [one]
    if one is not None:
        raise AgentCommandError(f"{single} must be an object", field=single)
    return entries(cmd, many)


def _sg_rule(raw: dict[str, Any], where: str) -> SgRule | None:
    if str(raw.get("ipVersion") or 4) != "4":
        return None  # IPv6: not applied here
    direction = _str(raw, "type", where)
    if direction not in ("Ingress", "Egress"):
        raise AgentCommandError(f"{where}: type {direction!r} is not Ingress or Egress")
    protocol = _str(raw, "protocol", where).upper()
    if protocol not in PROTOCOLS:
        raise AgentCommandError(f"{where}: protocol {protocol!r} is not one of {sorted(PROTOCOLS)}")
    ports = None
    start = raw.get("startPort")
    if protocol in ("TCP", "UDP") and start not in (None, -1):
        ports = _ports(start, raw.get("endPort"), where)
    cidr = raw.get("allowedCidr")
    remote = raw.get("remoteGroupUuid") or None
    action = str(raw.get("action") or "ACCEPT").upper()
    if action not in ("ACCEPT", "DROP"):
        raise AgentCommandError(f"{where}: action {action!r} is not ACCEPT or DROP")
    return SgRule(
        direction=direction,
        protocol=protocol,
        ports=ports,
        cidr=_cidr(cidr, where) if cidr not in (None, "") else None,
        remote_group=str(remote) if remote else None,
        action=action,
    )


def with_security_groups(state: NetState, tos: list[dict[str, Any]], members: object) -> NetState:
    """The whole security-group rule set replaced (the node always sends all of it)."""
    if not isinstance(members, dict):
        raise AgentCommandError("securityGroupMembers must be an object")
    checked_members: dict[str, tuple[str, ...]] = {}
    for group, addresses in members.items():
        if not isinstance(addresses, list):
            raise AgentCommandError(f"the members of group {group} must be a list")
        checked_members[str(group)] = tuple(
            sorted({_ipv4({"ip": a}, "ip", f"a member of group {group}") for a in addresses})
        )
    rules: dict[str, NicRules] = {}
    for to in tos:
        nic = _str(to, "vmNicUuid", "a rule set")
        where = f"the rules of NIC {nic}"
        raw_rules = to.get("rules") or []
        if not isinstance(raw_rules, list) or not all(isinstance(r, dict) for r in raw_rules):
            raise AgentCommandError(f"{where}: rules must be a list of objects")
        parsed = [_sg_rule(r, where) for r in raw_rules]
        rules[nic] = NicRules(
            nic_uuid=nic,
            device=_ifname(to, "vmNicInternalName", where),
            rules=tuple(r for r in parsed if r is not None),
            raw=to,
        )
    return replace(state, rules=rules, members=checked_members)


def _eip(raw: dict[str, Any]) -> Eip:
    where = f"EIP {raw.get('eipUuid')}"
    return Eip(
        eip_uuid=_str(raw, "eipUuid", where),
        vip=_ipv4(raw, "vip", where),
        nic_ip=_ipv4(raw, "nicIp", where),
        raw=raw,
    )


def with_eips(state: NetState, raws: list[dict[str, Any]], *, rebuild: bool) -> NetState:
    nat = {} if rebuild else dict(state.nat)
    for eip in (_eip(r) for r in raws):
        held = nat.get(eip.vip)
        if held is not None and held.eip_uuid != eip.eip_uuid:
            raise AgentCommandError(
                f"{eip.vip} is already NATed on this host for EIP {held.eip_uuid}",
                vip=eip.vip,
                eipUuid=held.eip_uuid,
            )
        nat[eip.vip] = eip
    return replace(state, nat=nat)


def without_eips(state: NetState, raws: list[dict[str, Any]]) -> NetState:
    nat = dict(state.nat)
    for raw in raws:
        vip = _ipv4(raw, "vip", f"EIP {raw.get('eipUuid')}")
        held = nat.get(vip)
        if held is not None and held.eip_uuid == raw.get("eipUuid"):
            del nat[vip]
    return replace(state, nat=nat)


def _forward(raw: dict[str, Any]) -> Forward:
    where = f"port forwarding rule {raw.get('uuid')}"
    protocol = _str(raw, "protocolType", where).lower()
    if protocol not in ("tcp", "udp"):
        raise AgentCommandError(f"{where}: protocolType {protocol!r} is not TCP or UDP")
    vip_ports = _ports(raw.get("vipPortStart"), raw.get("vipPortEnd"), where)
    # No private ports: the same as the VIP's.
    start = raw.get("privatePortStart")
    start = vip_ports[0] if start is None else start
    end = raw.get("privatePortEnd")
    nic_ports = _ports(start, start if end is None else end, where)
    cidr = raw.get("allowedCidr")
    return Forward(
        uuid=_str(raw, "uuid", where),
        vip=_ipv4(raw, "vip", where),
        protocol=protocol,
        vip_ports=vip_ports,
        nic_ip=_ipv4(raw, "nicIp", where),
        nic_ports=nic_ports,
        allowed_cidr=_cidr(cidr, where) if cidr not in (None, "") else None,
        raw=raw,
    )


def with_forwards(state: NetState, raws: list[dict[str, Any]], *, rebuild: bool) -> NetState:
    forwards = {} if rebuild else dict(state.forwards)
    for rule in (_forward(r) for r in raws):
        held = forwards.get(rule.key)
        if held is not None and held.uuid != rule.uuid:
            raise AgentCommandError(
                f"{rule.key} is already forwarded on this host by rule {held.uuid}",
                key=rule.key,
                ruleUuid=held.uuid,
            )
        forwards[rule.key] = rule
    return replace(state, forwards=forwards)


def without_forwards(state: NetState, raws: list[dict[str, Any]]) -> NetState:
    forwards = dict(state.forwards)
    for raw in raws:
        key = _forward(raw).key
        held = forwards.get(key)
        if held is not None and held.uuid == raw.get("uuid"):
            del forwards[key]
    return replace(state, forwards=forwards)


def _dhcp(raw: dict[str, Any]) -> DhcpEntry:
    where = f"the DHCP entry of {raw.get('mac')}"
    hostname = raw.get("hostname") or None
    if hostname is not None and not (isinstance(hostname, str) and _HOSTNAME.fullmatch(hostname)):
        raise AgentCommandError(f"{where}: hostname {hostname!r} is not a host name")
    domain = raw.get("dnsDomain") or None
    if domain is not None and not (isinstance(domain, str) and _DOMAIN.fullmatch(domain)):
        raise AgentCommandError(f"{where}: dnsDomain {domain!r} is not a domain name")
    dns = raw.get("dns") or []
    if not isinstance(dns, list):
        raise AgentCommandError(f"{where}: dns must be a list of addresses")
    return DhcpEntry(
        mac=_mac(raw, "mac", where),
        ip=_ipv4(raw, "ip", where),
        netmask=_optional_ipv4(raw, "netmask", where),
        gateway=_optional_ipv4(raw, "gateway", where),
        hostname=hostname,
        dns=tuple(_ipv4({"dns": d}, "dns", where) for d in dns),
        domain=domain,
        bridge=_ifname(raw, "bridgeName", where),
        l3=_optional_uuid(raw, "l3NetworkUuid", where),
        server_ip=_optional_ipv4(raw, "dhcpServerIp", where),
        raw=raw,
    )


def with_dhcp(state: NetState, raws: list[dict[str, Any]], *, rebuild: bool) -> NetState:
    dhcp = {} if rebuild else dict(state.dhcp)
    for entry in (_dhcp(r) for r in raws):
        dhcp[entry.mac] = entry
    return replace(state, dhcp=dhcp)


def without_dhcp(state: NetState, raws: list[dict[str, Any]]) -> NetState:
    dhcp = dict(state.dhcp)
    for raw in raws:
        dhcp.pop(_mac(raw, "mac", "a DHCP release"), None)
    return replace(state, dhcp=dhcp)


def _userdata(raw: dict[str, Any]) -> Userdata:
    metadata = raw.get("metadata")
    if not isinstance(metadata, dict):
        raise AgentCommandError("a userdata entry needs a metadata object", field="metadata")
    vm_uuid = _str(metadata, "vmUuid", "userdata metadata")
    where = f"the userdata of VM {vm_uuid}"
    hostname = metadata.get("vmHostname") or None
    if hostname is not None and not (isinstance(hostname, str) and _HOSTNAME.fullmatch(hostname)):
        raise AgentCommandError(f"{where}: vmHostname {hostname!r} is not a host name")
    parts = raw.get("userdataList") or []
    if not isinstance(parts, list) or not all(isinstance(p, str) for p in parts):
        raise AgentCommandError(f"{where}: userdataList must be a list of base64 strings")
    try:
        decoded = [base64.b64decode(p, validate=True) for p in parts]
    except (binascii.Error, ValueError):
        raise AgentCommandError(f"{where}: userdataList holds text that is not base64") from None
    return Userdata(
        vm_uuid=vm_uuid,
        vm_ip=_ipv4(raw, "vmIp", where),
        bridge=_ifname(raw, "bridgeName", where),
        l3=_optional_uuid(raw, "l3NetworkUuid", where),
        hostname=hostname,
        userdata=b"".join(decoded),
        raw=raw,
    )


def with_userdata(state: NetState, raws: list[dict[str, Any]], *, rebuild: bool) -> NetState:
    """Entries added (or the whole table replaced). The metadata server tells the guests
    of a network apart by their address: two VMs with one address on one L3 network are
    refused."""
    held = {} if rebuild else dict(state.userdata)
    for entry in (_userdata(r) for r in raws):
        other = held.get(entry.key)
        if other is not None and other.vm_uuid != entry.vm_uuid:
            raise AgentCommandError(
                f"{entry.vm_ip} already has the userdata of VM {other.vm_uuid} on this host",
                vmIp=entry.vm_ip,
                vmUuid=other.vm_uuid,
            )
        held[entry.key] = entry
    return replace(state, userdata=held)


def without_userdata(state: NetState, raws: list[dict[str, Any]]) -> NetState:
    """The entries of each address released (on the named L3 network, if one is named)."""
    held = dict(state.userdata)
    for raw in raws:
        ip = _ipv4(raw, "vmIp", "a userdata release")
        l3 = _optional_uuid(raw, "l3NetworkUuid", "a userdata release")
        for key, entry in list(held.items()):
            # Another VM's since (the address was given again): not ours to release.
            if (
                entry.vm_ip == ip
                and l3 in (None, entry.l3)
                and raw.get("vmUuid") in (None, entry.vm_uuid)
            ):
                del held[key]
    return replace(state, userdata=held)


def l3_of(cmd: dict[str, Any]) -> str:
    """The L3 network a command names (``l3NetworkUuid``)."""
    l3 = _optional_uuid(cmd, "l3NetworkUuid", "the command")
    if l3 is None:
        raise AgentCommandError("the command needs l3NetworkUuid", field="l3NetworkUuid")
    return l3


def without_l3(state: NetState, l3: str) -> NetState:
    """Every DHCP entry and userdata of L3 network ``l3`` gone."""
    return replace(
        state,
        dhcp={mac: e for mac, e in state.dhcp.items() if e.l3 != l3},
        userdata={ip: u for ip, u in state.userdata.items() if u.l3 != l3},
    )
