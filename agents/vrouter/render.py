"""What the appliance should run, rendered from a ``RouterState`` (pure, deterministic):
the nat table, dnsmasq's configuration and files, haproxy's configuration.

nat table (the KVM agent's chains, ``agents/kvm/netrender.render_nat``): ``zs-nat-pre``
DNATs each EIP's VIP to its guest address and each port-forwarding rule's VIP ports to
the guest's ports; ``zs-nat-post`` SNATs an EIP's guest to its VIP, then (after those, so
an EIP wins) the guest network to the router's public address. UDP listeners of load
balancers are DNATs too (haproxy serves TCP only), spread over their backends
round-robin by packet count.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path

from agents.kvm import netrender
from agents.kvm.netrender import NAT_POST, NAT_PRE, TableRules
from agents.vrouter.router import DHCP_STEM, RouterState


def render_nat(state: RouterState, public_device: str | None) -> TableRules:
    """``public_device``: the public NIC's device, when known: only traffic leaving
    through it is SNATed (not what goes to the management network)."""
    base = netrender.render_nat(state.net)
    rules = list(base.rules)
    for lb_uuid in sorted(state.lbs):
        lb = state.lbs[lb_uuid]
        for li in sorted(lb.listeners, key=lambda li: li.port):
            if li.protocol != "udp" or not li.backends:
                continue
            backends = sorted(li.backends, key=lambda b: ipaddress.IPv4Address(b.ip))
            for i, backend in enumerate(backends):
                left = len(backends) - i
                # The nth rule takes 1 of every `left` packets that reach it: equal shares.
                spread = f"-m statistic --mode nth --every {left} --packet 0 " if left > 1 else ""
                rules.append(
                    f"-A {NAT_PRE} -d {lb.vip}/32 -p udp --dport {li.port} {spread}"
                    f"-j DNAT --to-destination {backend.ip}:{li.instance_port}"
                )
    out = f"-o {public_device} " if public_device else ""
    for mac in sorted(state.snats):
        snat = state.snats[mac]
        rules.append(
            f"-A {NAT_POST} -s {snat.network} ! -d {snat.network} {out}"
            f"-j SNAT --to-source {snat.public_ip}"
        )
    return TableRules(base.table, base.chains, base.hooks, tuple(rules))


def dhcp_files(state: RouterState) -> dict[str, str]:
    """dnsmasq's ``guest.hosts``, ``guest.opts`` and ``guest.dns`` (always all three:
    dnsmasq refuses to start on a missing one)."""
    files = netrender.render_dnsmasq(state.net)
    for suffix in ("hosts", "opts", "dns"):
        files.setdefault(f"{DHCP_STEM}.{suffix}", "")
    return files


def dnsmasq_conf(state: RouterState, guest_device: str, files: Path, run: Path) -> str | None:
    """dnsmasq's configuration on the guest NIC (DNS only while there is no DHCP entry);
    None before ``/init`` named one with an address and netmask."""
    guest = state.nic("guest")
    if guest is None or guest.prefix is None:
        return None
    own = {guest.ip, guest.gateway}
    upstream = sorted(
        {d for e in state.net.dhcp.values() for d in e.dns if d not in own},
        key=ipaddress.IPv4Address,
    )
    domains = sorted({e.domain for e in state.net.dhcp.values() if e.domain})
    lines = [
        "# written by the zstackpy virtual-router agent; changes are overwritten",
        f"interface={guest_device}",
        "bind-dynamic",  # follows the addresses /init puts on the NIC later
        "except-interface=lo",
        # static: only the MACs of the hosts file get an address, each its own; the range
        # sets the network's tag its options are given by (agents/kvm/netrender.py).
        *(f"dhcp-range={r}" for r in netrender.dhcp_ranges(state.net).get(DHCP_STEM, ())),
        "dhcp-authoritative",
        f"dhcp-hostsfile={files / f'{DHCP_STEM}.hosts'}",
        f"dhcp-optsfile={files / f'{DHCP_STEM}.opts'}",
        f"addn-hosts={files / f'{DHCP_STEM}.dns'}",
        "no-hosts",
        "no-resolv",
        *(f"server={d}" for d in upstream),
        # The guests' own domain is answered here only (no upstream asked, no REFUSED).
        *(f"local=/{d}/" for d in domains),
        f"dhcp-leasefile={run / 'dnsmasq.leases'}",
        f"pid-file={run / 'dnsmasq.pid'}",
        "user=root",
    ]
    return "".join(f"{line}\n" for line in lines)


def haproxy_conf(state: RouterState) -> str | None:
    """haproxy's configuration for the TCP, HTTP and HTTPS listeners that have backends
    (HTTPS is passed through: there are no certificates); None when there are none."""
    sections: list[str] = []
    guest = state.nic("guest")
    for lb_uuid in sorted(state.lbs):
        lb = state.lbs[lb_uuid]
        for li in sorted(lb.listeners, key=lambda li: li.port):
            if li.protocol == "udp" or not li.backends:
                continue
            mode = "http" if li.protocol == "http" else "tcp"
            servers = [
                f"    server nic-{b.uuid} {b.ip}:{li.instance_port}"
                for b in sorted(li.backends, key=lambda b: b.uuid)
            ]
            # Backends see the router's own guest address (not the gateway it also holds).
            source = [f"    source {guest.ip}"] if guest is not None else []
            sections += [
                f"# load balancer {lb.uuid}, listener {li.uuid} ({li.protocol})",
                f"frontend listener-{li.uuid}",
                f"    mode {mode}",
                f"    bind {lb.vip}:{li.port}",
                f"    default_backend backends-{li.uuid}",
                f"backend backends-{li.uuid}",
                f"    mode {mode}",
                "    balance roundrobin",
                *source,
                *servers,
                "",
            ]
    if not sections:
        return None
    head = [
        "# written by the zstackpy virtual-router agent; changes are overwritten",
        "global",
        "    maxconn 4096",
        "defaults",
        "    timeout connect 5s",
        "    timeout client 60s",
        "    timeout server 60s",
        "",
    ]
    return "".join(f"{line}\n" for line in (*head, *sections))
