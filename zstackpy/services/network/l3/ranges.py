"""IP range arithmetic, with the stdlib ``ipaddress`` module: what a valid IPv4 range is,
the ranges a network CIDR gives, and overlaps. Pure functions; invalid input raises
ZError SYS.1007 naming the field and the rule broken."""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import AddressValueError, IPv4Address, IPv4Network, NetmaskValueError, ip_address
from typing import Any

from zstackpy.core.errors import SysErr, ZError


def invalid(description: str, **details: Any) -> ZError:
    return ZError(SysErr.INVALID_ARGUMENT, description, **details)


def parse_ipv4(value: str, field: str) -> IPv4Address:
    try:
        address = ip_address(value.strip())
    except ValueError:
        raise invalid(f"{field} {value!r} is not an IP address", field=field, value=value) from None
    if not isinstance(address, IPv4Address):
        raise invalid(f"{field} {value}: only IPv4 ranges are supported", field=field, value=value)
    return address


def parse_netmask(value: str) -> int:
    """The prefix length of a dotted netmask (``255.255.255.0`` -> 24)."""
    try:
        return IPv4Network(f"0.0.0.0/{value.strip()}").prefixlen
    except (AddressValueError, NetmaskValueError, ValueError):
        raise invalid(
            f"netmask {value!r} is not a valid IPv4 netmask", field="netmask", value=value
        ) from None


@dataclass(frozen=True, slots=True)
class IpRangeSpec:
    """A checked range: ``start..end`` inside ``network``, ``gateway`` in the network and
    outside the range (the allocator never hands the gateway out)."""

    start: IPv4Address
    end: IPv4Address
    network: IPv4Network
    gateway: IPv4Address

    @property
    def size(self) -> int:
        return int(self.end) - int(self.start) + 1

    def overlaps(self, start: IPv4Address, end: IPv4Address) -> bool:
        return self.start <= end and start <= self.end

    def column_values(self) -> dict[str, Any]:
        """IpRangeVO's columns for this range."""
        return {
            "start_ip": str(self.start),
            "end_ip": str(self.end),
            "netmask": str(self.network.netmask),
            "gateway": str(self.gateway),
            "network_cidr": str(self.network),
            "prefix_len": self.network.prefixlen,
            "ip_version": 4,
        }


def _host_bounds(network: IPv4Network) -> tuple[IPv4Address, IPv4Address]:
    if network.prefixlen > 30:
        raise invalid(
            f"network {network} has no room for a gateway and a range: use /30 or larger",
            networkCidr=str(network),
        )
    return network.network_address + 1, network.broadcast_address - 1


def range_from_bounds(start_ip: str, end_ip: str, netmask: str, gateway: str | None) -> IpRangeSpec:
    """AddIpRange's rules. Without a gateway the network's first address is the gateway."""
    start = parse_ipv4(start_ip, "startIp")
    end = parse_ipv4(end_ip, "endIp")
    network = IPv4Network(f"{start}/{parse_netmask(netmask)}", strict=False)
    if start > end:
        raise invalid(f"startIp {start} is after endIp {end}", startIp=str(start), endIp=str(end))
    if end not in network:
        raise invalid(
            f"startIp {start} and endIp {end} are not in one subnet of netmask {network.netmask}",
            startIp=str(start),
            endIp=str(end),
            netmask=netmask,
        )
    first, last = _host_bounds(network)
    if start < first or end > last:
        raise invalid(
            f"range {start}-{end} includes the network or broadcast address of {network}",
            networkCidr=str(network),
        )
    gw = first if gateway is None else parse_ipv4(gateway, "gateway")
    if gw not in network:
        raise invalid(f"gateway {gw} is not in subnet {network} of the range", gateway=str(gw))
    spec = IpRangeSpec(start, end, network, gw)
    if spec.overlaps(gw, gw):
        raise invalid(
            f"gateway {gw} is inside the range {start}-{end}: a VM could be given it",
            gateway=str(gw),
        )
    if gw in (network.network_address, network.broadcast_address):
        raise invalid(f"gateway {gw} is the network or broadcast address of {network}")
    return spec


def ranges_from_cidr(network_cidr: str, gateway: str | None) -> list[IpRangeSpec]:
    """AddIpRangeByNetworkCidr: every host address but the gateway (by default the first
    one): ``192.168.1.0/24`` gives 192.168.1.2-254 with gateway .1; a gateway in the
    middle splits the network into two ranges."""
    try:
        network = IPv4Network(network_cidr.strip(), strict=False)
    except ValueError:
        raise invalid(
            f"networkCidr {network_cidr!r} is not an IPv4 CIDR (e.g. 192.168.1.0/24)",
            field="networkCidr",
            value=network_cidr,
        ) from None
    first, last = _host_bounds(network)
    gw = first if gateway is None else parse_ipv4(gateway, "gateway")
    if not first <= gw <= last:
        raise invalid(f"gateway {gw} is not a host address of {network}", gateway=str(gw))
    pieces = [(first, gw - 1), (gw + 1, last)]
    return [IpRangeSpec(s, e, network, gw) for s, e in pieces if s <= e]


def spec_of(start_ip: str, end_ip: str, network_cidr: str, gateway: str) -> IpRangeSpec:
    """The spec of a stored range (its columns were checked when it was added)."""
    return IpRangeSpec(
        IPv4Address(start_ip), IPv4Address(end_ip), IPv4Network(network_cidr), IPv4Address(gateway)
    )
