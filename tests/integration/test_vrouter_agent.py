"""The virtual-router appliance's agent (``python -m agents.vrouter``) as a process,
driven over HTTP with callbacks as the node drives it, applying everything inside a
network namespace this test makes (dummy NICs with the router's MACs): the nat table
holds exactly the SNAT, EIP and port-forwarding rules it was told, dnsmasq serves the
DHCP entries, haproxy the load balancer's listeners; removals leave nothing; a restarted
agent puts back what it kept; bad input is refused whole. The machine's own network
namespace is never touched."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.processes import REPO
from tests.support.vrouter_agent import RouterAgentProcess, in_ns
from zstackpy.services.loadbalancer.messages import BackendNic, ListenerTO, LoadBalancerTO
from zstackpy.services.virtualrouter.messages import RouterView
from zstackpy.services.virtualrouter.tables import snat_to


def _missing() -> str | None:
    if os.geteuid() != 0:
        return "network namespaces need root"
    for tool in ("ip", "iptables-save", "iptables-restore", "dnsmasq", "haproxy", "busybox"):
        if shutil.which(tool) is None:
            return f"{tool} is missing (Debian iproute2 iptables dnsmasq-base haproxy busybox)"
    return None


pytestmark = [
    pytest.mark.timeout(120),
    pytest.mark.skipif(
        _missing() is not None and os.environ.get("ZSTACK_TEST_REAL") != "1",
        reason=str(_missing()),
    ),
]

PUBLIC_MAC, GUEST_MAC = "fa:16:3e:00:01:01", "fa:16:3e:00:02:01"
ROUTER = RouterView(
    uuid=uuid.uuid4().hex,
    guest_l3_network_uuid=uuid.uuid4().hex,
    management_ip="127.0.0.1",
    agent_port=7272,
    token="t",
    public_ip="198.51.100.2",
    public_mac=PUBLIC_MAC,
    guest_ip="10.0.0.2",
    guest_mac=GUEST_MAC,
    guest_netmask="255.255.255.0",
    guest_gateway="10.0.0.1",
)
# What the node's connect sends (zstackpy/services/virtualrouter/flows.configure).
NICS = [
    {"ip": ROUTER.management_ip, "role": "management"},
    {"ip": ROUTER.public_ip, "mac": ROUTER.public_mac, "role": "public"},
    {
        "ip": ROUTER.guest_ip,
        "mac": ROUTER.guest_mac,
        "netmask": ROUTER.guest_netmask,
        "gateway": ROUTER.guest_gateway,
        "role": "guest",
    },
]


def eip(
    vip: str = "198.51.100.7", guest: str = "10.0.0.5", eip_uuid: str = "eip1"
) -> dict[str, Any]:
    return {
        "eipUuid": eip_uuid,
        "vipIp": vip,
        "guestIp": guest,
        "privateMac": "fa:16:3e:00:00:05",
        "publicMac": PUBLIC_MAC,
        "vmNicUuid": "nic5",
    }


def forward() -> dict[str, Any]:
    return {
        "uuid": "pf1",
        "vipIp": "198.51.100.9",
        "vipPortStart": 8022,
        "vipPortEnd": 8022,
        "privatePortStart": 22,
        "privatePortEnd": 22,
        "protocolType": "TCP",
        "allowedCidr": None,
        "privateIp": "10.0.0.6",
        "privateMac": "fa:16:3e:00:00:06",
        "vmNicUuid": "nic6",
    }


def dhcp(ip: str, mac: str, hostname: str | None = None) -> dict[str, Any]:
    return {
        "vmUuid": "vm",
        "ip": ip,
        "mac": mac,
        "netmask": "255.255.255.0",
        "gateway": "10.0.0.1",
        "hostname": hostname,
        "dns": ["10.0.0.1"],
        "dnsDomain": "example.internal",
        "isDefaultL3Network": True,
    }


def load_balancer() -> dict[str, Any]:
    nics = [
        BackendNic(uuid="nic5", ip="10.0.0.5", mac="m"),
        BackendNic(uuid="nic6", ip="10.0.0.6", mac="m"),
    ]
    return LoadBalancerTO(
        lb_uuid="lb1",
        vip_ip="198.51.100.20",
        vip_l3_network_uuid="pub",
        listeners=[
            ListenerTO(
                listener_uuid="li-http",
                protocol="http",
                load_balancer_port=80,
                instance_port=8080,
                nics=nics,
            ),
            ListenerTO(
                listener_uuid="li-tcp",
                protocol="tcp",
                load_balancer_port=443,
                instance_port=443,
                nics=nics[:1],
            ),
            ListenerTO(
                listener_uuid="li-udp",
                protocol="udp",
                load_balancer_port=53,
                instance_port=5353,
                nics=nics,
            ),
        ],
    ).to_agent()


def nat_rules(ns: str) -> list[str]:
    """The agent's NAT rules in the namespace (its digest comment left out)."""
    return [
        line
        for line in in_ns(ns, "iptables-save", "-t", "nat").splitlines()
        if line.startswith("-A zs-") and "--comment" not in line
    ]


def addresses(ns: str, device: str) -> set[str]:
    out = in_ns(ns, "ip", "-o", "-4", "address", "show", "dev", device)
    return {line.split()[3] for line in out.splitlines()}


@pytest.fixture
def netns() -> Iterator[str]:
    """The router's namespace ``<name>``; its public NIC is wired (veth) to a client's
    namespace ``<name>-c`` (``c0``), its guest NIC to a guest's ``<name>-g`` (``g0``)."""
    name = f"zs-vr-test-{uuid.uuid4().hex[:8]}"
    made: list[str] = []
    try:
        for ns in (name, f"{name}-c", f"{name}-g"):
            subprocess.run(["ip", "netns", "add", ns], check=True)
            made.append(ns)
        for device, mac, peer, other in (
            ("pub0", PUBLIC_MAC, "c0", f"{name}-c"),
            ("gst0", GUEST_MAC, "g0", f"{name}-g"),
        ):
            in_ns(name, "ip", "link", "add", device, "address", mac, "type", "veth", "peer", peer)
            in_ns(name, "ip", "link", "set", peer, "netns", other)
            in_ns(other, "ip", "link", "set", peer, "up")
            in_ns(other, "ip", "link", "set", "lo", "up")
        yield name
    finally:
        for ns in made:
            subprocess.run(["ip", "netns", "delete", ns], check=True)


@pytest.fixture
async def agent(tmp_path: Path, netns: str) -> AsyncIterator[RouterAgentProcess]:
    async with RouterAgentProcess(tmp_path, netns) as running:
        yield running


async def ok(agent: RouterAgentProcess, path: str, body: dict[str, Any]) -> dict[str, Any]:
    result = await agent.call(path, body)
    assert result["success"], (path, result)
    return result


async def test_snat_eip_port_forwarding_dhcp_and_lb_are_applied_and_removed(
    agent: RouterAgentProcess, netns: str
) -> None:
    in_ns(netns, "iptables", "-t", "nat", "-A", "POSTROUTING", "-s", "192.0.2.1/32", "-j", "ACCEPT")
    init = await ok(agent, "/init", {"uuid": ROUTER.uuid, "nics": NICS})
    assert init["dnsmasq"] == "started"  # DNS and DHCP on the guest NIC from the start
    assert addresses(netns, "gst0") == {"10.0.0.2/24", "10.0.0.1/24"}
    assert addresses(netns, "pub0") == {"198.51.100.2/32"}
    assert in_ns(netns, "sysctl", "-n", "net.ipv4.ip_forward").strip() == "1"

    snat = await ok(agent, "/setsnat", {"snats": [snat_to(ROUTER)], "rebuild": True})
    assert snat["changedTables"] == ["nat"]
    await ok(agent, "/createeip", {"eips": [eip()]})
    await ok(agent, "/createportforwarding", {"rules": [forward()]})
    assert nat_rules(netns) == [
        "-A zs-nat-post -s 10.0.0.5/32 -j SNAT --to-source 198.51.100.7",
        "-A zs-nat-post -s 10.0.0.0/24 ! -d 10.0.0.0/24 -o pub0 -j SNAT --to-source 198.51.100.2",
        "-A zs-nat-pre -d 198.51.100.7/32 -j DNAT --to-destination 10.0.0.5",
        "-A zs-nat-pre -d 198.51.100.9/32 -p tcp -m tcp --dport 8022 "
        "-j DNAT --to-destination 10.0.0.6:22",
    ]
    saved = in_ns(netns, "iptables-save", "-t", "nat")
    assert "-A PREROUTING -j zs-nat-pre" in saved
    assert "-A POSTROUTING -j zs-nat-post" in saved
    assert "-A POSTROUTING -s 192.0.2.1/32 -j ACCEPT" in saved  # someone else's: kept
    # The router answers for the VIPs on its public NIC.
    assert addresses(netns, "pub0") == {"198.51.100.2/32", "198.51.100.7/32", "198.51.100.9/32"}
    # Sent again (the node's rebuild after a reconnect): nothing to change.
    again = await ok(agent, "/createeip", {"eips": [eip()], "rebuild": True})
    assert again["changedTables"] == []

    # DHCP: dnsmasq rereads its files with the entries.
    added = await ok(
        agent,
        "/adddhcp",
        {
            "dhcp": [
                dhcp("10.0.0.5", "FA:16:3E:00:00:05", "web1"),
                dhcp("10.0.0.6", "fa:16:3e:00:00:06"),
            ]
        },
    )
    assert added["dnsmasq"] == "reloaded"
    files = agent.state_dir / "dhcp"
    assert (files / "guest.hosts").read_text() == (
        "fa:16:3e:00:00:05,10.0.0.5,web1\nfa:16:3e:00:00:06,10.0.0.6\n"
    )
    assert "tag:zs0a00000024,option:router,10.0.0.1\n" in (files / "guest.opts").read_text()
    assert (files / "guest.dns").read_text() == "10.0.0.5 web1.example.internal web1\n"
    conf = (agent.state_dir / "run" / "dnsmasq.conf").read_text()
    assert "interface=gst0\n" in conf
    assert "dhcp-range=set:zs0a00000024,10.0.0.0,static,255.255.255.0\n" in conf
    dnsmasq = agent.daemon_pid("dnsmasq")
    assert dnsmasq is not None
    # It serves inside the router's namespace: DHCP and DNS on the guest NIC.
    listening = in_ns(netns, "ss", "-lnup")
    assert ":67 " in listening, listening
    assert "10.0.0.1:53 " in listening, listening

    # A load balancer: haproxy for TCP and HTTP listeners, DNAT for the UDP one.
    lb = await ok(agent, "/refreshlb", {"lbs": [load_balancer()]})
    assert lb["haproxy"] == "started"
    cfg = (agent.state_dir / "run" / "haproxy.cfg").read_text()
    assert "frontend listener-li-http\n    mode http\n    bind 198.51.100.20:80\n" in cfg
    assert "    server nic-nic5 10.0.0.5:8080\n    server nic-nic6 10.0.0.6:8080\n" in cfg
    assert "frontend listener-li-tcp\n    mode tcp\n    bind 198.51.100.20:443\n" in cfg
    assert "li-udp" not in cfg
    assert agent.daemon_pid("haproxy") is not None
    listening = in_ns(netns, "ss", "-lnt")
    assert "198.51.100.20:80" in listening
    assert "198.51.100.20:443" in listening
    udp = [r for r in nat_rules(netns) if "-p udp" in r]
    assert udp == [
        "-A zs-nat-pre -d 198.51.100.20/32 -p udp -m udp --dport 53 -m statistic --mode nth "
        "--every 2 --packet 0 -j DNAT --to-destination 10.0.0.5:5353",
        "-A zs-nat-pre -d 198.51.100.20/32 -p udp -m udp --dport 53 "
        "-j DNAT --to-destination 10.0.0.6:5353",
    ]
    # A backend leaves the HTTP listener: haproxy reloads with one server.
    changed = load_balancer()
    changed["listeners"][0]["nics"] = changed["listeners"][0]["nics"][:1]
    reloaded = await ok(agent, "/refreshlb", {"lbs": [changed]})
    assert reloaded["haproxy"] == "reloaded"
    assert "nic6 10.0.0.6:8080" not in (agent.state_dir / "run" / "haproxy.cfg").read_text()

    # Bad input is refused whole: nothing of the command is applied.
    bad = await agent.call(
        "/createeip",
        {"eips": [eip("198.51.100.30", "10.0.0.8", "e3"), eip("nope", "10.0.0.9", "e4")]},
    )
    assert not bad["success"]
    assert "is not an IPv4 address" in bad["error"]
    assert not any("198.51.100.30" in r for r in nat_rules(netns))
    taken = await agent.call("/createeip", {"eips": [eip(guest="10.0.0.7", eip_uuid="eip2")]})
    assert taken["details"]["eipUuid"] == "eip1"
    wrong_port = load_balancer()
    wrong_port["listeners"][0]["loadBalancerPort"] = 70000
    refused = await agent.call("/refreshlb", {"lbs": [wrong_port]})
    assert "is not a port" in refused["error"]
    assert refused["details"]["field"].endswith("loadBalancerPort")
    before = nat_rules(netns)
    unknown_nic = await agent.call("/init", {"nics": [{**NICS[1], "mac": "fa:16:3e:99:99:99"}]})
    assert "is not an interface of this appliance" in unknown_nic["error"]
    assert sorted(unknown_nic["details"]["interfaces"]) == ["gst0", "pub0"]
    assert nat_rules(netns) == before
    assert "198.51.100.7/32" in addresses(netns, "pub0")

    # Everything removed: no rule, no VIP address, no haproxy, no DHCP entry.
    await ok(agent, "/removeeip", {"eips": [eip()]})
    await ok(agent, "/revokeportforwarding", {"rules": [forward()]})
    await ok(agent, "/removesnat", {"snats": [snat_to(ROUTER)]})
    deleted = await ok(agent, "/deletelb", {"lbs": [{"lbUuid": "lb1"}]})
    assert deleted["haproxy"] == "stopped"
    released = await ok(
        agent,
        "/removedhcp",
        {"dhcp": [dhcp("10.0.0.5", "fa:16:3e:00:00:05"), dhcp("10.0.0.6", "fa:16:3e:00:00:06")]},
    )
    assert released["dnsmasq"] == "reloaded"
    assert nat_rules(netns) == []
    assert addresses(netns, "pub0") == {"198.51.100.2/32"}
    assert agent.daemon_pid("haproxy") is None
    assert (files / "guest.hosts").read_text() == ""
    assert "-A POSTROUTING -s 192.0.2.1/32 -j ACCEPT" in in_ns(netns, "iptables-save", "-t", "nat")


async def test_the_echo_is_sync_and_a_wrong_token_is_refused(agent: RouterAgentProcess) -> None:
    assert await agent.post("/echo", {}) == (200, {"success": True, "error": None})
    status, body = await agent.post("/echo", {}, token="wrong")
    assert status == 401
    assert body["success"] is False


async def test_a_restarted_agent_puts_back_what_it_kept(tmp_path: Path, netns: str) -> None:
    async with RouterAgentProcess(tmp_path, netns) as agent:
        await ok(agent, "/init", {"uuid": ROUTER.uuid, "nics": NICS})
        await ok(agent, "/setsnat", {"snats": [snat_to(ROUTER)]})
        await ok(agent, "/createeip", {"eips": [eip()]})
        await ok(agent, "/adddhcp", {"dhcp": [dhcp("10.0.0.5", "fa:16:3e:00:00:05")]})
        await ok(agent, "/refreshlb", {"lbs": [load_balancer()]})
        expected = nat_rules(netns)
        dnsmasq, haproxy = agent.daemon_pid("dnsmasq"), agent.daemon_pid("haproxy")
        await agent.stop()
        # While it is down the appliance loses its table and a VIP address (a reboot would).
        in_ns(netns, "iptables", "-t", "nat", "-F", "zs-nat-pre")
        in_ns(netns, "ip", "address", "del", "198.51.100.7/32", "dev", "pub0")
        await agent.start()
        # Back at start, before any command.
        assert nat_rules(netns) == expected
        assert "198.51.100.7/32" in addresses(netns, "pub0")
        # The daemons kept running and were adopted, not started twice.
        assert agent.daemon_pid("dnsmasq") == dnsmasq
        assert agent.daemon_pid("haproxy") == haproxy
        # The next command applies over everything kept.
        await ok(agent, "/createeip", {"eips": [eip("198.51.100.8", "10.0.0.6", "eip2")]})
        rules = nat_rules(netns)
        assert "-A zs-nat-pre -d 198.51.100.7/32 -j DNAT --to-destination 10.0.0.5" in rules
        assert "-A zs-nat-pre -d 198.51.100.8/32 -j DNAT --to-destination 10.0.0.6" in rules


def probe(ns: str, *args: str) -> str:
    argv = ["ip", "netns", "exec", ns, sys.executable, "-m", "tests.support.netprobe", *args]
    return subprocess.run(argv, check=True, capture_output=True, text=True, cwd=REPO).stdout.strip()


async def test_traffic_flows_through_the_router(agent: RouterAgentProcess, netns: str) -> None:
    """A client on the public side (``c0``, also the public network's gateway) and a
    guest (``g0``) reach each other through the router only as its rules say."""
    client, guest = f"{netns}-c", f"{netns}-g"
    in_ns(client, "ip", "address", "add", "198.51.100.1/24", "dev", "c0")
    in_ns(guest, "ip", "link", "set", "g0", "address", "fa:16:3e:00:00:05")
    public = {**NICS[1], "netmask": "255.255.255.0", "gateway": "198.51.100.1"}
    await ok(agent, "/init", {"uuid": ROUTER.uuid, "nics": [NICS[0], public, NICS[2]]})
    await ok(agent, "/adddhcp", {"dhcp": [dhcp("10.0.0.5", "fa:16:3e:00:00:05", "web1")]})

    # DHCP for real: the guest asks (busybox udhcpc) and gets its address and router.
    script = agent.tmp / "udhcpc.sh"
    script.write_text('#!/bin/sh\n[ "$1" = bound ] && echo "$ip $subnet $router $dns" > "$0.out"\n')
    script.chmod(0o755)
    in_ns(
        guest,
        "busybox",
        "udhcpc",
        "-i",
        "g0",
        "-n",
        "-q",
        "-f",
        "-t",
        "5",
        "-T",
        "1",
        "-s",
        str(script),
    )
    assert (agent.tmp / "udhcpc.sh.out").read_text().split() == [
        "10.0.0.5",
        "255.255.255.0",
        "10.0.0.1",
        "10.0.0.1",
    ]

    in_ns(guest, "ip", "address", "add", "10.0.0.5/24", "dev", "g0")
    in_ns(guest, "ip", "address", "add", "10.0.0.6/24", "dev", "g0")
    in_ns(guest, "ip", "route", "add", "default", "via", "10.0.0.1")
    # A new entry once a lease exists: dnsmasq rereads its files (SIGHUP) and lives on.
    dnsmasq = agent.daemon_pid("dnsmasq")
    more = await ok(agent, "/adddhcp", {"dhcp": [dhcp("10.0.0.7", "fa:16:3e:00:00:07")]})
    assert more["dnsmasq"] == "reloaded"
    await asyncio.sleep(0.5)
    assert agent.daemon_pid("dnsmasq") == dnsmasq
    # DNS: the router answers the guest's host name.
    answer = in_ns(guest, "busybox", "nslookup", "web1.example.internal", "10.0.0.1")
    assert "10.0.0.5" in answer
    await ok(agent, "/setsnat", {"snats": [snat_to(ROUTER)]})
    await ok(agent, "/createeip", {"eips": [eip()]})
    await ok(agent, "/createportforwarding", {"rules": [forward()]})
    await ok(agent, "/refreshlb", {"lbs": [load_balancer()]})

    servers = [
        subprocess.Popen(
            [
                "ip",
                "netns",
                "exec",
                ns,
                sys.executable,
                "-m",
                "tests.support.netprobe",
                "serve",
                *ports,
            ],
            cwd=REPO,
            stdout=subprocess.PIPE,
            text=True,
        )
        for ns, ports in ((guest, ["22", "443", "8080"]), (client, ["9000"]))
    ]
    try:
        for server in servers:
            assert server.stdout is not None
            assert server.stdout.readline().strip() == "serving"
        # The EIP: the client pings the VIP and reaches the guest (DNAT, and back).
        in_ns(client, "busybox", "ping", "-c", "1", "-W", "3", "198.51.100.7")
        assert probe(client, "fetch", "198.51.100.7", "8080") == "198.51.100.1 8080"
        # Port forwarding: VIP port 8022 is the second address's port 22.
        assert probe(client, "fetch", "198.51.100.9", "8022") == "198.51.100.1 22"
        # The load balancer: haproxy on the VIP, the guest behind it sees the router.
        assert probe(client, "fetch", "198.51.100.20", "443") == "10.0.0.2 443"
        assert probe(client, "fetch", "198.51.100.20", "80") in ("10.0.0.2 8080",)
        # Going out: the EIP's guest leaves as its VIP, the other as the router (SNAT).
        assert probe(guest, "fetch", "198.51.100.1", "9000", "10.0.0.5") == "198.51.100.7 9000"
        assert probe(guest, "fetch", "198.51.100.1", "9000", "10.0.0.6") == "198.51.100.2 9000"
        # Once the EIP is removed the VIP leads nowhere.
        await ok(agent, "/removeeip", {"eips": [eip()]})
        with pytest.raises(subprocess.CalledProcessError):
            in_ns(client, "busybox", "ping", "-c", "1", "-W", "1", "198.51.100.7")
    finally:
        for server in servers:
            server.kill()
            server.communicate()
