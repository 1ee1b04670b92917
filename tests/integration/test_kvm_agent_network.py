"""The KVM agent's network-service commands applied for real, inside a network namespace
this test makes (and removes): security groups, EIPs, port forwarding and DHCP, checked
in ``iptables-save`` of the namespace and in the dnsmasq files. The machine's own rules
are never touched."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from agents.kvm import dhcpns
from tests.support.kvm_agent import InProcessAgent


def _netns_error() -> str | None:
    if os.geteuid() != 0:
        return "network namespaces need root"
    for tool in ("ip", "iptables-save", "iptables-restore"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (Debian iproute2, iptables)"
    return None


needs_netns = pytest.mark.skipif(_netns_error() is not None, reason=str(_netns_error()))


def in_ns(ns: str, *argv: str, stdin: str | None = None) -> str:
    return subprocess.run(
        ["ip", "netns", "exec", ns, *argv], check=True, capture_output=True, text=True, input=stdin
    ).stdout


def namespaces() -> set[str]:
    listed = subprocess.run(["ip", "netns", "list"], check=True, capture_output=True, text=True)
    return {line.split()[0] for line in listed.stdout.splitlines() if line.strip()}


@pytest.fixture
def netns() -> Iterator[str]:
    """The agent's stand-in host; its L3 namespaces are ``<name>-l3-<L3 uuid>``."""
    name = f"zs-agent-test-{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        yield name
    finally:
        # What a failed test left (a passing one checks that the agent removed them).
        for left in sorted(n for n in namespaces() if n.startswith(f"{name}-l3-")):
            subprocess.run(["ip", "netns", "delete", left], check=False)
        subprocess.run(["ip", "netns", "delete", name], check=True)


@pytest.fixture
async def agent(tmp_path: Path, netns: str) -> AsyncIterator[InProcessAgent]:
    async with InProcessAgent(tmp_path, netns=netns) as running:
        yield running


NIC_A, NIC_B = uuid.uuid4().hex, uuid.uuid4().hex


def rule(**fields: Any) -> dict[str, Any]:
    base = {
        "uuid": uuid.uuid4().hex,
        "securityGroupUuid": "sg1",
        "type": "Ingress",
        "protocol": "TCP",
        "startPort": 22,
        "endPort": 22,
        "allowedCidr": "10.0.0.0/24",
        "remoteGroupUuid": None,
        "priority": 1,
        "action": "ACCEPT",
        "ipVersion": 4,
    }
    return {**base, **fields}


def rule_to(nic: str, device: str, rules: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "vmNicUuid": nic,
        "vmInstanceUuid": "vm",
        "vmNicInternalName": device,
        "vmNicMac": "fa:16:3e:00:00:01",
        "vmNicIp": "10.0.0.5",
        "securityGroupUuids": ["sg1"],
        "rules": rules,
    }


def eip(vip: str, nic_ip: str, eip_uuid: str = "eip1") -> dict[str, Any]:
    return {"eipUuid": eip_uuid, "vip": vip, "nicIp": nic_ip, "nicName": "vnic1.0"}


def forward(uuid_: str = "pf1") -> dict[str, Any]:
    return {
        "uuid": uuid_,
        "vip": "198.51.100.9",
        "vipPortStart": 8022,
        "vipPortEnd": 8022,
        "privatePortStart": 22,
        "privatePortEnd": 22,
        "protocolType": "TCP",
        "allowedCidr": "203.0.113.0/24",
        "nicIp": "10.0.0.5",
    }


@needs_netns
async def test_security_groups_eips_forwards_and_dhcp_land_in_the_namespace(
    agent: InProcessAgent, netns: str, tmp_path: Path
) -> None:
    # The operator's own rule, which the agent must leave alone.
    in_ns(netns, "iptables", "-A", "FORWARD", "-s", "192.0.2.1/32", "-j", "DROP")
    refresh: dict[str, Any] = {
        "ruleTOs": [
            rule_to(
                NIC_A,
                "vnic1.0",
                [
                    rule(),
                    rule(protocol="ALL", startPort=None, allowedCidr=None, remoteGroupUuid="sg2"),
                    rule(type="Egress", protocol="UDP", startPort=53, endPort=53, allowedCidr=None),
                ],
            ),
            rule_to(NIC_B, "vnic2.0", [rule(protocol="ICMP", startPort=None)]),
        ],
        "securityGroupMembers": {"sg2": ["10.0.1.7", "10.0.1.8"]},
    }
    done = await agent.call("/securitygroup/refreshrulesonhost", refresh)
    assert done["success"], done
    # The first command of a host also puts the (empty) nat chains and their hooks in place.
    assert done["changedTables"] == ["filter", "nat"]
    saved = in_ns(netns, "iptables-save", "-t", "filter")
    assert "-A FORWARD -s 192.0.2.1/32 -j DROP" in saved
    assert "-A FORWARD -j zs-sg" in saved
    assert "--physdev-out vnic1.0 --physdev-is-bridged" in saved
    assert "-s 10.0.0.0/24 -p tcp -m tcp --dport 22 -j ACCEPT" in saved
    assert "-s 10.0.1.7/32 -j ACCEPT" in saved
    assert "-s 10.0.1.8/32 -j ACCEPT" in saved
    assert "-p udp -m udp --dport 53 -j ACCEPT" in saved
    assert "-s 10.0.0.0/24 -p icmp -j ACCEPT" in saved
    assert saved.count(":zs-sg-") == 4

    # The same rule set again: the runner sees it in place and changes nothing.
    again = await agent.call("/securitygroup/refreshrulesonhost", refresh)
    assert again["changedTables"] == []
    assert in_ns(netns, "iptables-save", "-t", "filter").count("-A FORWARD -j zs-sg") == 1

    # NIC B leaves the host: its chains go, NIC A's stay.
    refresh["ruleTOs"] = refresh["ruleTOs"][:1]
    assert (await agent.call("/securitygroup/refreshrulesonhost", refresh))["success"]
    saved = in_ns(netns, "iptables-save", "-t", "filter")
    assert saved.count(":zs-sg-") == 2
    assert "vnic2.0" not in saved
    assert "-A FORWARD -s 192.0.2.1/32 -j DROP" in saved

    # An EIP and a port forwarding rule: the nat table.
    applied = await agent.call(
        "/flatnetworkprovider/eip/apply", {"eip": eip("198.51.100.7", "10.0.0.5")}
    )
    assert applied["changedTables"] == ["nat"], applied
    pf = await agent.call("/flatnetworkprovider/portforwarding/apply", {"rule": forward()})
    assert pf["success"], pf
    nat = in_ns(netns, "iptables-save", "-t", "nat")
    assert "-A PREROUTING -j zs-nat-pre" in nat
    assert "-A POSTROUTING -j zs-nat-post" in nat
    assert "-A zs-nat-pre -d 198.51.100.7/32 -j DNAT --to-destination 10.0.0.5" in nat
    assert "-A zs-nat-post -s 10.0.0.5/32 -j SNAT --to-source 198.51.100.7" in nat
    assert (
        "-A zs-nat-pre -s 203.0.113.0/24 -d 198.51.100.9/32 -p tcp -m tcp --dport 8022 "
        "-j DNAT --to-destination 10.0.0.5:22"
    ) in nat
    # Another EIP on a VIP this host NATs already is refused; nothing changes.
    taken = await agent.call(
        "/flatnetworkprovider/eip/apply", {"eip": eip("198.51.100.7", "10.0.0.6", "eip2")}
    )
    assert not taken["success"]
    assert taken["details"]["eipUuid"] == "eip1"
    assert "10.0.0.6" not in in_ns(netns, "iptables-save", "-t", "nat")

    # DHCP and DNS entries: dnsmasq files of the L3 network, served in its namespace.
    in_ns(netns, "ip", "link", "add", "br_eth1", "type", "bridge")
    entry = {
        "vmUuid": "vm",
        "ip": "10.0.0.5",
        "mac": "FA:16:3E:00:00:01",
        "netmask": "255.255.255.0",
        "gateway": "10.0.0.1",
        "hostname": "web1",
        "dns": ["10.0.0.1"],
        "dnsDomain": "example.internal",
        "bridgeName": "br_eth1",
        "l3NetworkUuid": "l3a",
        "dhcpServerIp": "10.0.0.2",
    }
    dhcp = await agent.call("/flatnetworkprovider/dhcp/apply", {"dhcp": [entry], "rebuild": False})
    assert dhcp.get("changedFiles") == ["l3a.dns", "l3a.hosts", "l3a.opts"], dhcp
    files = tmp_path / "agent" / "state" / "dnsmasq"
    assert (files / "l3a.hosts").read_text() == ("fa:16:3e:00:00:01,10.0.0.5,web1\n")
    assert "tag:zs0a00000024,option:router,10.0.0.1\n" in (files / "l3a.opts").read_text()
    assert (files / "l3a.dns").read_text() == "10.0.0.5 web1.example.internal web1\n"
    released = await agent.call("/flatnetworkprovider/dhcp/release", {"dhcp": [entry]})
    assert sorted(released["changedFiles"]) == ["l3a.dns", "l3a.hosts", "l3a.opts"]
    assert list(files.iterdir()) == []

    # Bad input is refused whole: nothing of the command is applied.
    bad = await agent.call(
        "/flatnetworkprovider/eip/batchapply",
        {"eips": [eip("198.51.100.20", "10.0.0.8", "eip3"), eip("not-an-ip", "10.0.0.9", "e4")]},
    )
    assert not bad["success"]
    assert "is not an IPv4 address" in bad["error"]
    assert "198.51.100.20" not in in_ns(netns, "iptables-save", "-t", "nat")
    evil = await agent.call(
        "/securitygroup/refreshrulesonhost",
        {"ruleTOs": [rule_to(NIC_A, "vnic1.0; reboot", [rule()])]},
    )
    assert "is not an interface name" in evil["error"]

    # Deletes: the EIP and the forward leave the nat table; hooks and chains stay.
    gone = await agent.call(
        "/flatnetworkprovider/eip/batchdelete", {"eips": [eip("198.51.100.7", "10.0.0.5")]}
    )
    assert gone["changedTables"] == ["nat"]
    await agent.call("/flatnetworkprovider/portforwarding/batchdelete", {"rules": [forward()]})
    nat = in_ns(netns, "iptables-save", "-t", "nat")
    assert "DNAT" not in nat
    assert "SNAT" not in nat
    assert "-A PREROUTING -j zs-nat-pre" in nat


@needs_netns
async def test_a_restarted_agent_applies_over_what_it_was_told_and_repairs_the_table(
    tmp_path: Path, netns: str
) -> None:
    async with InProcessAgent(tmp_path, netns=netns) as agent:
        first = await agent.call(
            "/flatnetworkprovider/eip/apply", {"eip": eip("198.51.100.7", "10.0.0.5")}
        )
        assert first["success"], first
    # Someone flushes the agent's chain while it is down.
    in_ns(netns, "iptables", "-t", "nat", "-F", "zs-nat-pre")
    async with InProcessAgent(tmp_path, netns=netns) as agent:
        second = await agent.call(
            "/flatnetworkprovider/eip/apply", {"eip": eip("198.51.100.8", "10.0.0.6", "eip2")}
        )
        assert second["changedTables"] == ["nat"]
    nat = in_ns(netns, "iptables-save", "-t", "nat")
    # The first EIP is kept (the agent's state outlived it) and back in the flushed chain.
    assert "-A zs-nat-pre -d 198.51.100.7/32 -j DNAT --to-destination 10.0.0.5" in nat
    assert "-A zs-nat-pre -d 198.51.100.8/32 -j DNAT --to-destination 10.0.0.6" in nat


async def test_on_the_test_driver_without_a_namespace_nothing_reaches_iptables(
    tmp_path: Path,
) -> None:
    async with InProcessAgent(tmp_path) as agent:
        done = await agent.call(
            "/flatnetworkprovider/eip/apply", {"eip": eip("198.51.100.7", "10.0.0.5")}
        )
        assert done == {"success": True, "error": None, "changedTables": [], "changedFiles": []}
        # Validated and kept all the same.
        bad = await agent.call("/flatnetworkprovider/eip/apply", {"eip": eip("x", "10.0.0.5")})
        assert "is not an IPv4 address" in bad["error"]
    saved = (tmp_path / "agent" / "state" / "network.json").read_text()
    assert "198.51.100.7" in saved


async def test_dhcp_entries_kept_without_a_server_address_are_dropped_at_start(
    tmp_path: Path,
) -> None:
    # What an agent before the L3 namespaces kept: an entry with no dhcpServerIp.
    state = tmp_path / "agent" / "state"
    state.mkdir(parents=True)
    old = {"mac": "fa:16:3e:00:00:01", "ip": "10.0.0.5", "bridgeName": "br0"}
    kept = {"dhcp": [old], "eips": [eip("198.51.100.7", "10.0.0.5")]}
    (state / "network.json").write_text(json.dumps(kept))
    async with InProcessAgent(tmp_path) as agent:
        # The next command is applied, not refused over the old entry.
        done = await agent.call(
            "/flatnetworkprovider/eip/apply", {"eip": eip("198.51.100.8", "10.0.0.6", "eip2")}
        )
        assert done["success"], done
    saved = json.loads((state / "network.json").read_text())
    assert saved["dhcp"] == []
    assert sorted(e["vip"] for e in saved["eips"]) == ["198.51.100.7", "198.51.100.8"]


CLOUD_CONFIG = b"#cloud-config\nruncmd:\n  - echo hello\n"
# Asks 169.254.169.254 for a path from a given source address; prints the status, then
# the body (or the error, when nothing answers).
_FETCH = """
import http.client, sys
conn = http.client.HTTPConnection(sys.argv[1], int(sys.argv[2]), timeout=3,
                                  source_address=(sys.argv[3], 0))
try:
    conn.request("GET", sys.argv[4])
    answer = conn.getresponse()
    sys.stdout.write(f"{answer.status}\\n")
    sys.stdout.flush()
    sys.stdout.buffer.write(answer.read())
except OSError as exc:
    sys.stdout.write(f"error {exc!r}\\n")
"""


async def fetch(
    ns: str, source: str, path: str, to: str = "169.254.169.254", port: int = 80
) -> str:
    """A guest's request from namespace ``ns`` (a process of its own: the agent that
    answers runs in this test's event loop)."""
    proc = await asyncio.create_subprocess_exec(
        "ip",
        "netns",
        "exec",
        ns,
        sys.executable,
        "-c",
        _FETCH,
        to,
        str(port),
        source,
        path,
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await proc.communicate()
    return out.decode()


def plug_guest(host: str, bridge: str, guest: str, mac: str, port: str | None = None) -> None:
    """Namespace ``guest`` made, its ``eth0`` (MAC ``mac``, no address) a port of
    ``bridge`` in ``host`` (made when missing, with no address: the agent must not need
    one there)."""
    subprocess.run(["ip", "netns", "add", guest], check=True)
    if subprocess.run(["ip", "-n", host, "link", "show", bridge], capture_output=True).returncode:
        in_ns(host, "ip", "link", "add", bridge, "type", "bridge")
        in_ns(host, "ip", "link", "set", bridge, "up")
    port = port or f"v{uuid.uuid4().hex[:8]}"
    in_ns(host, "ip", "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", guest)
    in_ns(host, "ip", "link", "set", port, "master", bridge, "up")
    in_ns(guest, "ip", "link", "set", "lo", "up")
    in_ns(guest, "ip", "link", "set", "eth0", "address", mac)
    in_ns(guest, "ip", "link", "set", "eth0", "up")


@pytest.fixture
def guests(netns: str) -> Iterator[Any]:
    """``plug(bridge, mac, port)``: a new guest namespace on ``bridge`` of the agent's
    host, its NIC's host end named ``port`` (a VM NIC's tap device)."""
    made: list[str] = []

    def plug(bridge: str, mac: str, port: str | None = None) -> str:
        name = f"zs-guest-test-{uuid.uuid4().hex[:8]}"
        made.append(name)
        plug_guest(netns, bridge, name, mac, port)
        return name

    try:
        yield plug
    finally:
        for name in made:
            subprocess.run(["ip", "netns", "delete", name], check=False)


GUEST_MAC = "fa:16:3e:00:01:05"
L3_UD = f"l3-ud-{uuid.uuid4().hex[:8]}"


def dhcp_entry(**fields: Any) -> dict[str, Any]:
    base = {
        "vmUuid": "vm",
        "ip": "10.0.1.5",
        "mac": GUEST_MAC,
        "netmask": "255.255.255.0",
        "gateway": "10.0.1.1",
        "hostname": "web1",
        "dns": ["10.0.1.2"],
        "dnsDomain": "example.internal",
        "bridgeName": "br_dh",
        "l3NetworkUuid": "l3-dh",
        "dhcpServerIp": "10.0.1.2",
    }
    return {**base, **fields}


def userdata_entry(vm_uuid: str = "vm-ud", ip: str = "10.0.0.5") -> dict[str, Any]:
    return {
        "metadata": {"vmUuid": vm_uuid, "vmHostname": "web1"},
        "userdataList": [base64.b64encode(CLOUD_CONFIG).decode()],
        "vmIp": ip,
        "netmask": "255.255.255.0",
        "bridgeName": "br_ud",
        "l3NetworkUuid": L3_UD,
    }


def addresses(ns: str, device: str) -> list[str]:
    shown = json.loads(in_ns(ns, "ip", "-j", "-4", "addr", "show", "dev", device))
    return [f"{a['local']}/{a['prefixlen']}" for link in shown for a in link["addr_info"]]


@needs_netns
async def test_userdata_is_served_at_the_metadata_address_in_the_networks_namespace(
    agent: InProcessAgent, netns: str, guests: Any, tmp_path: Path
) -> None:
    guest = guests("br_ud", GUEST_MAC)
    # The addresses (10.0.0.6: a second guest's) and the route the guest's lease gives.
    in_ns(guest, "ip", "addr", "add", "10.0.0.5/24", "dev", "eth0")
    in_ns(guest, "ip", "addr", "add", "10.0.0.6/24", "dev", "eth0")
    in_ns(guest, "ip", "route", "add", "169.254.169.254/32", "via", "10.0.0.2")
    lease = dhcp_entry(
        ip="10.0.0.5", bridgeName="br_ud", l3NetworkUuid=L3_UD, dhcpServerIp="10.0.0.2"
    )
    assert (await agent.call("/flatnetworkprovider/dhcp/apply", {"dhcp": [lease]}))["success"]
    done = await agent.call(
        "/flatnetworkprovider/userdata/batchapply", {"userdata": [userdata_entry()]}
    )
    assert done["success"], done
    assert f"userdata/{L3_UD}/10.0.0.5/latest/user-data" in done["changedFiles"]
    files = tmp_path / "agent" / "state" / "userdata" / L3_UD / "10.0.0.5" / "latest"
    assert (files / "user-data").read_bytes() == CLOUD_CONFIG
    # No redirect on the host: the network's namespace holds the address itself.
    assert "169.254.169.254" not in in_ns(netns, "iptables-save", "-t", "nat")
    ns = agent.agent.network.namespaces.prefix + L3_UD
    inner = dhcpns.veth_names(L3_UD)[1]
    assert addresses(ns, inner) == ["10.0.0.2/24", "169.254.169.254/32"]
    assert addresses(netns, "br_ud") == []

    # The guest reads its own userdata and metadata at 169.254.169.254.
    assert await fetch(guest, "10.0.0.5", "/latest/user-data") == "200\n" + CLOUD_CONFIG.decode()
    assert await fetch(guest, "10.0.0.5", "/latest/meta-data/") == (
        "200\ninstance-id\nlocal-hostname\n"
    )
    assert await fetch(guest, "10.0.0.5", "/latest/meta-data/instance-id") == "200\nvm-ud"
    # Another guest reads nothing of it; nothing answers on the DHCP server's address.
    assert (await fetch(guest, "10.0.0.6", "/latest/user-data")).startswith("404\n")
    assert (await fetch(guest, "10.0.0.5", "/latest/user-data", to="10.0.0.2")).startswith("error")

    # Another VM with the same address on the network is refused; bad input too; nothing
    # changes.
    clash = await agent.call(
        "/flatnetworkprovider/userdata/apply", {"userdata": userdata_entry("vm-other")}
    )
    assert not clash["success"]
    assert clash["details"]["vmUuid"] == "vm-ud"
    bad = userdata_entry("vm-bad", "10.0.0.6")
    bad["userdataList"] = ["not base64!"]
    refused = await agent.call("/flatnetworkprovider/userdata/apply", {"userdata": bad})
    assert "not base64" in refused["error"]
    assert (await fetch(guest, "10.0.0.6", "/latest/user-data")).startswith("404\n")

    # The same address on another network (another bridge) is another guest: each reads
    # its own network's userdata.
    l3_other = f"l3-ud2-{uuid.uuid4().hex[:8]}"
    twin = guests("br_ud2", "fa:16:3e:00:03:05")
    in_ns(twin, "ip", "addr", "add", "10.0.0.5/24", "dev", "eth0")
    in_ns(twin, "ip", "route", "add", "169.254.169.254/32", "via", "10.0.0.2")
    other_lease = {**lease, "mac": "fa:16:3e:00:03:05", "bridgeName": "br_ud2"}
    other_lease["l3NetworkUuid"] = l3_other
    other = {**userdata_entry("vm-twin"), "bridgeName": "br_ud2", "l3NetworkUuid": l3_other}
    other["userdataList"] = [base64.b64encode(b"#!/bin/sh\necho twin\n").decode()]
    assert (await agent.call("/flatnetworkprovider/dhcp/apply", {"dhcp": [other_lease]}))["success"]
    done = await agent.call("/flatnetworkprovider/userdata/apply", {"userdata": other})
    assert done["success"], done
    assert await fetch(twin, "10.0.0.5", "/latest/user-data") == "200\n#!/bin/sh\necho twin\n"
    assert await fetch(guest, "10.0.0.5", "/latest/user-data") == "200\n" + CLOUD_CONFIG.decode()
    twin_release = {"vmUuid": "vm-twin", "vmIp": "10.0.0.5", "l3NetworkUuid": l3_other}
    assert (
        await agent.call("/flatnetworkprovider/userdata/release", {"userdata": [twin_release]})
    )["success"]
    assert (await agent.call("/flatnetworkprovider/dhcp/release", {"dhcp": [other_lease]}))[
        "success"
    ]
    assert await fetch(guest, "10.0.0.5", "/latest/user-data") == "200\n" + CLOUD_CONFIG.decode()

    # Released: the metadata address and the files go; the DHCP server stays.
    gone = await agent.call(
        "/flatnetworkprovider/userdata/release",
        {"userdata": [{"vmUuid": "vm-ud", "vmIp": "10.0.0.5", "bridgeName": "br_ud"}]},
    )
    assert gone["success"], gone
    assert addresses(ns, inner) == ["10.0.0.2/24"]
    assert (await fetch(guest, "10.0.0.5", "/latest/user-data")).startswith("error")
    assert list((tmp_path / "agent" / "state" / "userdata").iterdir()) == []
    assert (await agent.call("/flatnetworkprovider/dhcp/release", {"dhcp": [lease]}))["success"]
    assert ns not in namespaces()


# udhcpc's script: what the lease said, once bound.
_LEASE_SCRIPT = """#!/bin/sh
if [ "$1" = bound ]; then
  echo "ip=$ip subnet=$subnet router=$router dns=$dns" \
    "hostname=$hostname domain=$domain routes=$staticroutes" > "$0.lease"
fi
exit 0
"""


async def dhcp_lease(ns: str, script: Path) -> str | None:
    """What busybox's udhcpc in ``ns`` is given (None: no lease)."""
    lease = Path(f"{script}.lease")
    lease.unlink(missing_ok=True)
    proc = await asyncio.create_subprocess_exec(
        "ip",
        "netns",
        "exec",
        ns,
        "busybox",
        "udhcpc",
        "-i",
        "eth0",
        "-f",
        "-q",
        "-n",
        "-t",
        "3",
        "-T",
        "1",
        "-O",
        "staticroutes",  # option 121, as the DHCP clients of cloud images ask for it
        "-s",
        str(script),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await proc.communicate()
    print(out.decode())  # shown when the test fails
    return lease.read_text().strip() if lease.exists() else None


@pytest.fixture
def lease_script(tmp_path: Path) -> Path:
    script = tmp_path / "udhcpc.sh"
    script.write_text(_LEASE_SCRIPT)
    script.chmod(0o755)
    return script


def _dhcp_error() -> str | None:
    if shutil.which("dnsmasq") is None:
        return "dnsmasq is not installed (Debian dnsmasq-base)"
    if shutil.which("busybox") is None:
        return "busybox is not installed (Debian busybox): its udhcpc is the guest"
    return None


needs_dhcp = pytest.mark.skipif(_dhcp_error() is not None, reason=str(_dhcp_error()))


def is_running(pid: int) -> bool:
    return Path(f"/proc/{pid}").exists()


@needs_netns
@needs_dhcp
async def test_the_networks_dnsmasq_gives_a_guest_its_nics_address(
    agent: InProcessAgent, netns: str, guests: Any, lease_script: Path
) -> None:
    dhcp_guest = guests("br_dh", GUEST_MAC)
    entry = dhcp_entry()
    done = await agent.call("/flatnetworkprovider/dhcp/apply", {"dhcp": [entry], "rebuild": False})
    assert done["success"], done
    pid = agent.agent.network.dnsmasq.pid("l3-dh")
    assert pid is not None

    # The guest asks: it gets its NIC's address, gateway, DNS server, name, and the
    # route to the metadata address through the DHCP server.
    lease = await dhcp_lease(dhcp_guest, lease_script)
    assert lease == (
        "ip=10.0.1.5 subnet=255.255.255.0 router=10.0.1.1 dns=10.0.1.2 "
        "hostname=web1 domain=example.internal "
        "routes=169.254.169.254/32 10.0.1.2 0.0.0.0/0 10.0.1.1"
    )

    # Its name resolves at the network's dnsmasq (the guest takes its address first).
    in_ns(dhcp_guest, "ip", "addr", "add", "10.0.1.5/24", "dev", "eth0")
    proc = await asyncio.create_subprocess_exec(
        "ip", "netns", "exec", dhcp_guest, "busybox", "nslookup", "web1.example.internal",
        "10.0.1.2", stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    answer, _ = await proc.communicate()
    assert "Address: 10.0.1.5" in answer.decode(), answer.decode()
    in_ns(dhcp_guest, "ip", "addr", "flush", "dev", "eth0")

    # The entry changes (another address for the MAC): dnsmasq rereads its files.
    moved = {**entry, "ip": "10.0.1.9"}
    assert (await agent.call("/flatnetworkprovider/dhcp/apply", {"dhcp": [moved]}))["success"]
    assert agent.agent.network.dnsmasq.pid("l3-dh") == pid
    lease = await dhcp_lease(dhcp_guest, lease_script)
    assert lease is not None
    assert lease.startswith("ip=10.0.1.9 ")

    # Released: the network's dnsmasq stops, its namespace goes; the guest gets nothing.
    gone = await agent.call("/flatnetworkprovider/dhcp/release", {"dhcp": [moved]})
    assert gone["success"], gone
    assert agent.agent.network.dnsmasq.pid("l3-dh") is None
    assert not is_running(pid)
    assert f"{netns}-l3-l3-dh" not in namespaces()
    assert await dhcp_lease(dhcp_guest, lease_script) is None


def ns_inode(name: str) -> int:
    return os.stat(f"/run/netns/{name}").st_ino


def veths(ns: str) -> list[str]:
    shown = json.loads(in_ns(ns, "ip", "-j", "link", "show", "type", "veth"))
    return sorted(link["ifname"] for link in shown)


@needs_netns
@needs_dhcp
async def test_two_networks_get_two_namespaces_kept_over_a_restart_and_removed_at_the_end(
    tmp_path: Path, netns: str, guests: Any, lease_script: Path
) -> None:
    l3_a, l3_b = f"l3-a-{uuid.uuid4().hex[:8]}", f"l3-b-{uuid.uuid4().hex[:8]}"
    mac_b = "fa:16:3e:00:02:05"
    guest_a, guest_b = guests("br_a", GUEST_MAC), guests("br_b", mac_b)
    a = dhcp_entry(bridgeName="br_a", l3NetworkUuid=l3_a)
    # The same addresses on another network: each namespace has its own.
    b = dhcp_entry(mac=mac_b, bridgeName="br_b", l3NetworkUuid=l3_b, hostname="web2")
    prefix = f"{netns}-l3-"
    ns_a, ns_b = prefix + l3_a, prefix + l3_b
    async with InProcessAgent(tmp_path, netns=netns) as agent:
        done = await agent.call("/flatnetworkprovider/dhcp/apply", {"dhcp": [a, b]})
        assert done["success"], done
        assert {ns_a, ns_b} <= namespaces()
        assert (await dhcp_lease(guest_a, lease_script) or "").startswith("ip=10.0.1.5 ")
        lease_b = await dhcp_lease(guest_b, lease_script) or ""
        assert "hostname=web2 " in lease_b

        # Each network's namespace holds its own veth end and nothing of the other's:
        # from A, B's server (the same address) is not there; the host's bridges hold
        # no address, and each has the one veth of its own network.
        for ns, l3 in ((ns_a, l3_a), (ns_b, l3_b)):
            inner = dhcpns.veth_names(l3)[1]
            assert veths(ns) == [inner]
            assert addresses(ns, inner) == ["10.0.1.2/24"]
        for bridge, l3 in (("br_a", l3_a), ("br_b", l3_b)):
            assert addresses(netns, bridge) == []
            ports = json.loads(in_ns(netns, "ip", "-j", "link", "show", "master", bridge))
            assert dhcpns.veth_names(l3)[0] in {p["ifname"] for p in ports}
            assert len(ports) == 2  # the network's veth and its guest's
        in_ns(guest_a, "ip", "addr", "add", "10.0.1.77/24", "dev", "eth0")
        in_ns(ns_b, "ip", "addr", "add", "10.0.1.88/24", "dev", dhcpns.veth_names(l3_b)[1])
        ping = subprocess.run(
            ["ip", "netns", "exec", guest_a, "busybox", "ping", "-c", "1", "-W", "1", "10.0.1.88"],
            capture_output=True,
        )
        assert ping.returncode != 0  # B's namespace is not on A's bridge
        in_ns(guest_a, "ip", "addr", "flush", "dev", "eth0")

        # The same command again changes nothing: no file, no process, no namespace.
        kept = {ns: ns_inode(ns) for ns in (ns_a, ns_b)}
        pids = {l3: agent.agent.network.dnsmasq.pid(l3) for l3 in (l3_a, l3_b)}
        again = await agent.call("/flatnetworkprovider/dhcp/apply", {"dhcp": [a, b]})
        assert (again["changedFiles"], again["changedTables"]) == ([], [])
        assert {ns: ns_inode(ns) for ns in (ns_a, ns_b)} == kept
        assert {l3: agent.agent.network.dnsmasq.pid(l3) for l3 in (l3_a, l3_b)} == pids
        host_veths = veths(netns)
    for pid in pids.values():
        assert pid is not None
        assert not is_running(pid)  # the agent's dnsmasq stop with it

    # Restarted: the agent finds its namespaces and keeps them; guests get leases again.
    async with InProcessAgent(tmp_path, netns=netns) as agent:
        assert {ns: ns_inode(ns) for ns in (ns_a, ns_b)} == kept
        assert veths(netns) == host_veths
        # ... and repairs them: the address put on B's veth end by hand is gone.
        assert addresses(ns_b, dhcpns.veth_names(l3_b)[1]) == ["10.0.1.2/24"]
        assert (await dhcp_lease(guest_b, lease_script) or "").startswith("ip=10.0.1.5 ")

        # The L3 network goes: its namespace, veth pair and dnsmasq with it.
        pid_a = agent.agent.network.dnsmasq.pid(l3_a)
        assert pid_a is not None
        deleted = await agent.call(
            "/flatnetworkprovider/dhcp/deletenamespace",
            {"l3NetworkUuid": l3_a, "bridgeName": "br_a", "namespaceName": ns_a},
        )
        assert deleted["success"], deleted
        assert ns_a not in namespaces()
        assert ns_b in namespaces()
        assert dhcpns.veth_names(l3_a)[0] not in veths(netns)
        assert not is_running(pid_a)
        assert await dhcp_lease(guest_a, lease_script) is None

        # The last entry released: nothing of the agent's is left on the host.
        pid_b = agent.agent.network.dnsmasq.pid(l3_b)
        assert pid_b is not None
        assert (await agent.call("/flatnetworkprovider/dhcp/release", {"dhcp": [b]}))["success"]
        assert not {n for n in namespaces() if n.startswith(prefix)}
        assert [v for v in veths(netns) if v.startswith("zsv")] == []
        assert not is_running(pid_b)


@needs_netns
@needs_dhcp
async def test_a_guest_behind_security_groups_still_gets_its_lease_and_userdata(
    agent: InProcessAgent, netns: str, guests: Any, lease_script: Path
) -> None:
    # Bridged traffic goes through the stand-in host's FORWARD chain (as with br_netfilter
    # on a KVM host): the guest's NIC lets in SSH only and out HTTPS only.
    assert in_ns(netns, "cat", "/proc/sys/net/bridge/bridge-nf-call-iptables").strip() == "1"
    guest = guests("br_sg", GUEST_MAC, "vnic9.0")
    only = [
        rule(allowedCidr="10.0.1.0/24"),
        rule(type="Egress", startPort=443, endPort=443, allowedCidr=None),
    ]
    refresh = {"ruleTOs": [rule_to(NIC_A, "vnic9.0", only)], "securityGroupMembers": {}}
    assert (await agent.call("/securitygroup/refreshrulesonhost", refresh))["success"]
    l3 = "l3-sg"
    entry = dhcp_entry(bridgeName="br_sg", l3NetworkUuid=l3)
    assert (await agent.call("/flatnetworkprovider/dhcp/apply", {"dhcp": [entry]}))["success"]
    data = {**userdata_entry(ip="10.0.1.5"), "bridgeName": "br_sg", "l3NetworkUuid": l3}
    assert (await agent.call("/flatnetworkprovider/userdata/apply", {"userdata": data}))["success"]

    lease = await dhcp_lease(guest, lease_script)
    assert lease is not None
    assert lease.startswith("ip=10.0.1.5 ")
    in_ns(guest, "ip", "addr", "add", "10.0.1.5/24", "dev", "eth0")
    in_ns(guest, "ip", "route", "add", "169.254.169.254/32", "via", "10.0.1.2")
    assert await fetch(guest, "10.0.1.5", "/latest/user-data") == "200\n" + CLOUD_CONFIG.decode()
    # What the groups do not let through stays out: DNS at the DHCP server.
    proc = await asyncio.create_subprocess_exec(
        "ip", "netns", "exec", guest, "busybox", "nslookup", "-timeout=1", "web1", "10.0.1.2",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    answer, _ = await proc.communicate()
    assert "Address: 10.0.1.5" not in answer.decode()


@needs_netns
@needs_dhcp
async def test_a_dnsmasq_left_by_a_killed_agent_gives_way_to_the_next_agents(
    tmp_path: Path, netns: str, guests: Any, lease_script: Path
) -> None:
    guest = guests("br_dh", GUEST_MAC)
    entry = dhcp_entry()
    async with InProcessAgent(tmp_path, netns=netns) as agent:
        assert (await agent.call("/flatnetworkprovider/dhcp/apply", {"dhcp": [entry]}))["success"]
        first = agent.agent.network.dnsmasq.pid("l3-dh")
        argv = Path(f"/proc/{first}/cmdline").read_bytes().decode().split("\0")[:-1]
    # What an agent killed with SIGKILL leaves: its dnsmasq, still serving, pid file and all.
    orphan = subprocess.Popen(
        ["ip", "netns", "exec", f"{netns}-l3-l3-dh", *argv],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        pid_file = tmp_path / "agent" / "state" / "dnsmasq-run" / "l3-dh.pid"
        for _ in range(50):
            if pid_file.exists() and pid_file.read_text().strip() == str(orphan.pid):
                break
            await asyncio.sleep(0.1)
        async with InProcessAgent(tmp_path, netns=netns) as agent:
            pid = agent.agent.network.dnsmasq.pid("l3-dh")
            assert pid is not None
            assert pid != orphan.pid
            assert orphan.poll() is not None  # stopped before the new one took the port
            lease = await dhcp_lease(guest, lease_script)
            assert lease is not None
            assert lease.startswith("ip=10.0.1.5 ")
            assert (await agent.call("/flatnetworkprovider/dhcp/release", {"dhcp": [entry]}))[
                "success"
            ]
    finally:
        if orphan.poll() is None:
            orphan.kill()
        orphan.wait()
