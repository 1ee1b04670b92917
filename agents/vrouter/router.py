"""What the node told the appliance (``RouterState``) and the pure functions that make a
new state from a command; every command is validated whole first, so bad input changes
nothing. EIPs, port forwarding and DHCP entries are kept as the KVM agent keeps the flat
provider's (``agents/kvm/netrules.py``: the appliance's fields are mapped onto its
entries); the NICs, SNAT and load balancers are the appliance's own."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field, replace
from typing import Any

from agents.kvm import netrules
from agents.kvm.netrules import NetState
from agents.runtime import AgentCommandError

# The dnsmasq files of the guest network are named after this (netrender's "bridge").
DHCP_STEM = "guest"
ROLES = ("management", "public", "guest")
LB_PROTOCOLS = ("tcp", "udp", "http", "https")
_MAC = re.compile(r"[0-9a-f]{2}(:[0-9a-f]{2}){5}")
_NAME = re.compile(r"[A-Za-z0-9-]{1,64}")


def _ipv4(value: object, what: str) -> str:
    try:
        return str(ipaddress.IPv4Address(str(value)))
    except ValueError:
        raise AgentCommandError(f"{what} {value!r} is not an IPv4 address", field=what) from None


def _mac(value: object, what: str) -> str:
    text = str(value).lower()
    if not _MAC.fullmatch(text):
        raise AgentCommandError(f"{what} {value!r} is not a MAC address", field=what)
    return text


def _name(value: object, what: str) -> str:
    if not isinstance(value, str) or not _NAME.fullmatch(value):
        raise AgentCommandError(f"{what} {value!r} is not a uuid", field=what)
    return value


def _port(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 65536:
        raise AgentCommandError(f"{what} {value!r} is not a port (1-65535)", field=what)
    return value


def _prefix(netmask: object, what: str) -> int:
    try:
        return ipaddress.IPv4Network(f"0.0.0.0/{netmask}").prefixlen
    except ValueError:
        raise AgentCommandError(f"{what} {netmask!r} is not a netmask", field=what) from None


@dataclass(frozen=True, slots=True)
class Nic:
    """One of the appliance's NICs. ``prefix`` None: the address alone (/32)."""

    role: str
    ip: str
    mac: str | None
    prefix: int | None
    gateway: str | None  # guest: the network's gateway address, which the router holds


@dataclass(frozen=True, slots=True)
class Snat:
    private_mac: str
    network: str  # the guest CIDR whose traffic leaves as public_ip
    public_ip: str
    public_mac: str | None


@dataclass(frozen=True, slots=True)
class Backend:
    uuid: str
    ip: str


@dataclass(frozen=True, slots=True)
class Listener:
    uuid: str
    protocol: str
    port: int
    instance_port: int
    backends: tuple[Backend, ...]


@dataclass(frozen=True, slots=True)
class LoadBalancer:
    uuid: str
    vip: str
    listeners: tuple[Listener, ...]


@dataclass(frozen=True, slots=True)
class RouterState:
    nics: dict[str, Nic] = field(default_factory=dict)  # role ->
    net: NetState = field(default_factory=NetState)  # eips, port forwarding, dhcp
    snats: dict[str, Snat] = field(default_factory=dict)  # private NIC MAC ->
    lbs: dict[str, LoadBalancer] = field(default_factory=dict)  # uuid ->
    raw: dict[str, list[dict[str, Any]]] = field(default_factory=dict, compare=False)

    def nic(self, role: str) -> Nic | None:
        return self.nics.get(role)

    def vips(self) -> set[str]:
        """Addresses the router answers for on its public NIC besides its own."""
        found = {e.vip for e in self.net.nat.values()} | {f.vip for f in self.net.forwards.values()}
        return found | {lb.vip for lb in self.lbs.values()}

    def to_json(self) -> dict[str, Any]:
        return {
            "nics": self.raw.get("nics", []),
            "net": self.net.to_json(),
            "snats": self.raw.get("snats", []),
            "lbs": self.raw.get("lbs", []),
        }

    @classmethod
    def from_json(cls, saved: dict[str, Any]) -> RouterState:
        state = with_nics(cls(), netrules.entries(saved, "nics"))
        state = replace(state, net=NetState.from_json(saved.get("net") or {}))
        state = with_snats(state, netrules.entries(saved, "snats"), rebuild=True)
        return with_lbs(state, netrules.entries(saved, "lbs"), rebuild=True)


def _raw(state: RouterState, name: str, items: list[dict[str, Any]]) -> dict[str, Any]:
    return {**state.raw, name: items}


# ----- NICs ------------------------------------------------------------------------------


def with_nics(state: RouterState, raws: list[dict[str, Any]]) -> RouterState:
    """``/init``: the NICs replace what was known."""
    nics: dict[str, Nic] = {}
    for raw in raws:
        role = raw.get("role")
        if role not in ROLES:
            raise AgentCommandError(f"NIC role {role!r} is not one of {list(ROLES)}", field="role")
        where = f"the {role} NIC"
        netmask, gateway = raw.get("netmask"), raw.get("gateway")
        nics[role] = Nic(
            role=role,
            ip=_ipv4(raw.get("ip"), f"{where}: ip"),
            mac=_mac(raw["mac"], f"{where}: mac") if raw.get("mac") else None,
            prefix=_prefix(netmask, f"{where}: netmask") if netmask else None,
            gateway=_ipv4(gateway, f"{where}: gateway") if gateway else None,
        )
    return replace(state, nics=nics, raw=_raw(state, "nics", raws))


# ----- SNAT ------------------------------------------------------------------------------


def _snat(raw: dict[str, Any]) -> Snat:
    where = "SNAT"
    gateway = _ipv4(raw.get("privateNicIp"), f"{where}: privateNicIp")
    prefix = _prefix(raw.get("snatNetmask"), f"{where}: snatNetmask")
    public_mac = raw.get("publicNicMac")
    return Snat(
        private_mac=_mac(raw.get("privateNicMac"), f"{where}: privateNicMac"),
        network=str(ipaddress.IPv4Network(f"{gateway}/{prefix}", strict=False)),
        public_ip=_ipv4(raw.get("publicIp"), f"{where}: publicIp"),
        public_mac=_mac(public_mac, f"{where}: publicNicMac") if public_mac else None,
    )


def _merge(
    held: list[dict[str, Any]], new: list[dict[str, Any]], key: Any, *, rebuild: bool
) -> list[dict[str, Any]]:
    by_key = {} if rebuild else {key(r): r for r in held}
    by_key.update({key(r): r for r in new})
    return list(by_key.values())


def with_snats(state: RouterState, raws: list[dict[str, Any]], *, rebuild: bool) -> RouterState:
    snats = {} if rebuild else dict(state.snats)
    for snat in map(_snat, raws):
        snats[snat.private_mac] = snat
    kept = _merge(
        state.raw.get("snats", []), raws, lambda r: str(r["privateNicMac"]).lower(), rebuild=rebuild
    )
    kept = [r for r in kept if str(r["privateNicMac"]).lower() in snats]
    return replace(state, snats=snats, raw=_raw(state, "snats", kept))


def without_snats(state: RouterState, raws: list[dict[str, Any]]) -> RouterState:
    gone = {_mac(r.get("privateNicMac"), "SNAT: privateNicMac") for r in raws}
    snats = {k: v for k, v in state.snats.items() if k not in gone}
    kept = [r for r in state.raw.get("snats", []) if str(r["privateNicMac"]).lower() in snats]
    return replace(state, snats=snats, raw=_raw(state, "snats", kept))


# ----- EIPs, port forwarding, DHCP: the flat provider's entries --------------------------


def _eip(raw: dict[str, Any]) -> dict[str, Any]:
    return {"eipUuid": raw.get("eipUuid"), "vip": raw.get("vipIp"), "nicIp": raw.get("guestIp")}


def _forward(raw: dict[str, Any]) -> dict[str, Any]:
    keys = ("uuid", "vipPortStart", "vipPortEnd", "privatePortStart", "privatePortEnd")
    mapped = {k: raw.get(k) for k in keys}
    return {
        **mapped,
        "protocolType": raw.get("protocolType"),
        "allowedCidr": raw.get("allowedCidr"),
        "vip": raw.get("vipIp"),
        "nicIp": raw.get("privateIp"),
    }


def _dhcp(raw: dict[str, Any]) -> dict[str, Any]:
    return {**raw, "bridgeName": DHCP_STEM}


def with_eips(state: RouterState, raws: list[dict[str, Any]], *, rebuild: bool) -> RouterState:
    net = netrules.with_eips(state.net, [_eip(r) for r in raws], rebuild=rebuild)
    return replace(state, net=net)


def without_eips(state: RouterState, raws: list[dict[str, Any]]) -> RouterState:
    return replace(state, net=netrules.without_eips(state.net, [_eip(r) for r in raws]))


def with_forwards(state: RouterState, raws: list[dict[str, Any]], *, rebuild: bool) -> RouterState:
    net = netrules.with_forwards(state.net, [_forward(r) for r in raws], rebuild=rebuild)
    return replace(state, net=net)


def without_forwards(state: RouterState, raws: list[dict[str, Any]]) -> RouterState:
    return replace(state, net=netrules.without_forwards(state.net, [_forward(r) for r in raws]))


def with_dhcp(state: RouterState, raws: list[dict[str, Any]], *, rebuild: bool) -> RouterState:
    net = netrules.with_dhcp(state.net, [_dhcp(r) for r in raws], rebuild=rebuild)
    return replace(state, net=net)


def without_dhcp(state: RouterState, raws: list[dict[str, Any]]) -> RouterState:
    return replace(state, net=netrules.without_dhcp(state.net, raws))


# ----- load balancers --------------------------------------------------------------------


def _backend(nic: dict[str, Any], where: str) -> Backend:
    return Backend(
        _name(nic.get("uuid"), f"{where}: nic uuid"), _ipv4(nic.get("ip"), f"{where}: nic ip")
    )


def _lb(raw: dict[str, Any]) -> LoadBalancer:
    uuid = _name(raw.get("lbUuid"), "lbUuid")
    where = f"load balancer {uuid}"
    listeners = []
    for li in netrules.entries(raw, "listeners"):
        lwhere = f"{where}: listener {li.get('listenerUuid')}"
        protocol = str(li.get("protocol") or "").lower()
        if protocol not in LB_PROTOCOLS:
            raise AgentCommandError(
                f"{lwhere}: protocol {li.get('protocol')!r} is not one of {list(LB_PROTOCOLS)}",
                field="protocol",
            )
        port = _port(li.get("loadBalancerPort"), f"{lwhere}: loadBalancerPort")
        instance = li.get("instancePort")
        instance_port = port if instance is None else _port(instance, f"{lwhere}: instancePort")
        listeners.append(
            Listener(
                uuid=_name(li.get("listenerUuid"), f"{where}: listenerUuid"),
                protocol=protocol,
                port=port,
                instance_port=instance_port,
                backends=tuple(_backend(n, lwhere) for n in netrules.entries(li, "nics")),
            )
        )
    return LoadBalancer(
        uuid=uuid, vip=_ipv4(raw.get("vipIp"), f"{where}: vipIp"), listeners=tuple(listeners)
    )


def _check_ports(lbs: dict[str, LoadBalancer]) -> None:
    # haproxy binds TCP ports (tcp, http, https alike); UDP listeners are NAT rules.
    taken: dict[tuple[str, str, int], str] = {}
    for lb in lbs.values():
        for li in lb.listeners:
            key = (lb.vip, "udp" if li.protocol == "udp" else "tcp", li.port)
            if key in taken and taken[key] != li.uuid:
                raise AgentCommandError(
                    f"{key[1]} port {li.port} of {lb.vip} is taken by listener {taken[key]}",
                    vip=lb.vip,
                    port=li.port,
                    listenerUuid=taken[key],
                )
            taken[key] = li.uuid


def with_lbs(state: RouterState, raws: list[dict[str, Any]], *, rebuild: bool) -> RouterState:
    lbs = {} if rebuild else dict(state.lbs)
    for lb in map(_lb, raws):
        lbs[lb.uuid] = lb
    _check_ports(lbs)
    kept = _merge(state.raw.get("lbs", []), raws, lambda r: r["lbUuid"], rebuild=rebuild)
    return replace(state, lbs=lbs, raw=_raw(state, "lbs", kept))


def without_lbs(state: RouterState, raws: list[dict[str, Any]]) -> RouterState:
    gone = {_name(r.get("lbUuid"), "lbUuid") for r in raws}
    lbs = {k: v for k, v in state.lbs.items() if k not in gone}
    kept = [r for r in state.raw.get("lbs", []) if r["lbUuid"] in lbs]
    return replace(state, lbs=lbs, raw=_raw(state, "lbs", kept))
