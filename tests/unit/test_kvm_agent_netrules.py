"""The KVM agent's network rule sets: rendering from the node's commands, validation,
and the runner's plan (what ``iptables-restore`` gets, and nothing when the set is live)."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest

from agents.kvm import dhcpns, netrender, netrules
from agents.kvm.metadata import read_for
from agents.kvm.netrender import nic_chain
from agents.kvm.netrules import NetState
from agents.kvm.netrunner import parse_save, plan
from agents.runtime import AgentCommandError


def sg_state() -> NetState:
    tos = [
        {
            "vmNicUuid": "nic-a",
            "vmNicInternalName": "vnic1.0",
            "rules": [
                {"type": "Ingress", "protocol": "TCP", "startPort": 80, "endPort": 81},
                {"type": "Ingress", "protocol": "ALL", "remoteGroupUuid": "sg2"},
                {"type": "Ingress", "protocol": "TCP", "startPort": 1, "ipVersion": 6},
            ],
        }
    ]
    return netrules.with_security_groups(NetState(), tos, {"sg2": ["10.0.1.8", "10.0.1.7"]})


def test_a_nic_gets_its_own_chains_default_deny_in_and_open_out() -> None:
    rendered = netrender.render_security_groups(sg_state())
    chain_in, chain_out = nic_chain("nic-a", "Ingress"), nic_chain("nic-a", "Egress")
    assert rendered.chains == ("zs-sg", chain_in, chain_out)
    assert len(chain_in) <= 28
    assert rendered.rules == (
        f"-A zs-sg -m physdev --physdev-out vnic1.0 --physdev-is-bridged -j {chain_in}",
        f"-A zs-sg -m physdev --physdev-in vnic1.0 --physdev-is-bridged -j {chain_out}",
        f"-A {chain_in} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
        # The network's DHCP server and metadata address (its namespace, a bridge port).
        f"-A {chain_in} -p udp --sport 67 --dport 68 -j ACCEPT",
        f"-A {chain_in} -s 0.0.0.0/0 -p tcp --dport 80:81 -j ACCEPT",
        f"-A {chain_in} -s 10.0.1.7/32 -j ACCEPT",  # members, sorted
        f"-A {chain_in} -s 10.0.1.8/32 -j ACCEPT",
        f"-A {chain_in} -j DROP",
        f"-A {chain_out} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
        f"-A {chain_out} -p udp --sport 68 --dport 67 -j ACCEPT",
        f"-A {chain_out} -d 169.254.169.254/32 -p tcp --dport 80 -j ACCEPT",
        f"-A {chain_out} -j ACCEPT",  # no egress rule: anything may leave (IPv6 ones skipped)
    )


def test_the_same_state_renders_the_same_digest_and_another_does_not() -> None:
    render = netrender.render_security_groups
    a, b = render(sg_state()), render(sg_state())
    assert a.digest() == b.digest()
    other = netrules.with_security_groups(sg_state(), [], {})
    assert render(other).digest() != a.digest()


def save_text(rendered: netrender.TableRules, *, hooks: bool = True, extra: str = "") -> str:
    """What iptables-save would show once ``rendered`` was restored."""
    lines = [f"*{rendered.table}", ":FORWARD ACCEPT [0:0]"]
    lines += [f":{c} - [0:0]" for c in rendered.chains]
    lines += [extra] if extra else []
    if hooks:
        lines += [f"-A {builtin} -j {chain}" for builtin, chain in rendered.hooks]
    lines.append(rendered.marker())
    lines.append("COMMIT")
    return "\n".join(lines)


def test_the_plan_is_empty_when_the_set_is_live_and_repairs_what_is_not() -> None:
    rendered = netrender.render_security_groups(sg_state())
    live = parse_save(save_text(rendered), "zs-sg")
    assert plan(rendered, live) is None

    # The hook from FORWARD was removed by someone: only it is missing, and it is added.
    unhooked = plan(rendered, parse_save(save_text(rendered, hooks=False), "zs-sg"))
    assert unhooked is not None
    assert "-I FORWARD 1 -j zs-sg" in unhooked

    # A chain of a NIC that left: declared (emptied), unhooked, deleted, in one transaction.
    stale = "zs-sg-0123456789ab-in"
    text = plan(
        rendered,
        parse_save(save_text(rendered, extra=f":{stale} - [0:0]"), "zs-sg"),
    )
    assert text is not None
    lines = text.splitlines()
    assert lines[0] == "*filter"
    assert f":{stale} - [0:0]" in lines
    assert lines[-2:] == [f"-X {stale}", "COMMIT"]
    assert "-I FORWARD" not in text  # the hook is there already

    # Another set: rendered whole, every owned chain declared first (emptied), then filled.
    fresh = plan(rendered, parse_save("*filter\n:FORWARD ACCEPT [0:0]\nCOMMIT", "zs-sg"))
    assert fresh is not None
    assert fresh.index(":zs-sg - [0:0]") < fresh.index(rendered.marker())


def test_nat_renders_eips_and_forwards() -> None:
    state = netrules.with_eips(
        NetState(), [{"eipUuid": "e1", "vip": "198.51.100.7", "nicIp": "10.0.0.5"}], rebuild=False
    )
    state = netrules.with_forwards(
        state,
        [
            {
                "uuid": "pf1",
                "vip": "198.51.100.9",
                "vipPortStart": 8000,
                "vipPortEnd": 8009,
                "privatePortStart": 9000,
                "privatePortEnd": 9009,
                "protocolType": "UDP",
                "nicIp": "10.0.0.5",
            }
        ],
        rebuild=False,
    )
    assert netrender.render_nat(state).rules == (
        "-A zs-nat-pre -d 198.51.100.7/32 -j DNAT --to-destination 10.0.0.5",
        "-A zs-nat-post -s 10.0.0.5/32 -j SNAT --to-source 198.51.100.7",
        "-A zs-nat-pre -d 198.51.100.9/32 -p udp --dport 8000:8009 "
        "-j DNAT --to-destination 10.0.0.5:9000-9009",
    )
    # A repeated delete, or one of another EIP on the VIP, leaves the table as it is.
    kept = netrules.without_eips(state, [{"eipUuid": "other", "vip": "198.51.100.7"}])
    assert kept.nat == state.nat
    assert NetState.from_json(state.to_json()) == state


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"vip": "198.51.100.7", "nicIp": "10.0.0.5"}, "needs a non-empty string 'eipUuid'"),
        ({"eipUuid": "e", "vip": "1.2.3.4/24", "nicIp": "10.0.0.5"}, "is not an IPv4 address"),
        ({"eipUuid": "e", "vip": "1.2.3.4", "nicIp": "::1"}, "is not an IPv4 address"),
    ],
)
def test_bad_eips_are_refused(entry: dict[str, Any], message: str) -> None:
    with pytest.raises(AgentCommandError, match=message):
        netrules.with_eips(NetState(), [entry], rebuild=False)


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ({"type": "Sideways", "protocol": "TCP"}, "is not Ingress or Egress"),
        ({"type": "Ingress", "protocol": "SCTP"}, "protocol 'SCTP'"),
        ({"type": "Ingress", "protocol": "TCP", "startPort": 0}, "is not a port"),
        ({"type": "Ingress", "protocol": "TCP", "startPort": 9, "endPort": 8}, "runs backwards"),
        ({"type": "Ingress", "protocol": "TCP", "allowedCidr": "10.0.0.0/33"}, "IPv4 CIDR"),
        ({"type": "Ingress", "protocol": "TCP", "action": "REJECT"}, "ACCEPT or DROP"),
    ],
)
def test_bad_security_group_rules_are_refused(rule: dict[str, Any], message: str) -> None:
    to = {"vmNicUuid": "n", "vmNicInternalName": "vnic1.0", "rules": [rule]}
    with pytest.raises(AgentCommandError, match=message):
        netrules.with_security_groups(NetState(), [to], {})


def test_dhcp_files_per_bridge_and_bad_entries() -> None:
    entry = {
        "mac": "fa:16:3e:00:00:02",
        "ip": "10.0.0.6",
        "netmask": "255.255.255.0",
        "gateway": "10.0.0.1",
        "hostname": "db1",
        "dns": ["10.0.0.1", "10.0.0.2"],
        "bridgeName": "br_eth1_10",
    }
    files = netrender.render_dnsmasq(netrules.with_dhcp(NetState(), [entry], rebuild=False))
    state = netrules.with_dhcp(
        NetState(), [entry, {**entry, "mac": "fa:16:3e:00:00:03", "ip": "10.0.0.7"}], rebuild=False
    )
    files = netrender.render_dnsmasq(state)
    # Options by network (its range sets the tag), not by MAC: no tags in the hosts file.
    assert files == {
        "br_eth1_10.hosts": "fa:16:3e:00:00:02,10.0.0.6,db1\nfa:16:3e:00:00:03,10.0.0.7,db1\n",
        "br_eth1_10.opts": (
            "tag:zs0a00000024,option:router,10.0.0.1\n"
            "tag:zs0a00000024,option:dns-server,10.0.0.1,10.0.0.2\n"
        ),
        "br_eth1_10.dns": "10.0.0.6 db1\n10.0.0.7 db1\n",
    }
    assert netrender.dhcp_ranges(state) == {
        "br_eth1_10": ("set:zs0a00000024,10.0.0.0,static,255.255.255.0",)
    }
    for bad, message in (
        ({**entry, "mac": "fa:16:3e"}, "is not a MAC address"),
        ({**entry, "hostname": "db1\ndhcp-range=x"}, "is not a host name"),
        ({**entry, "hostname": "db1\n"}, "is not a host name"),
        ({**entry, "dnsDomain": "example.internal\n"}, "is not a domain name"),
        ({**entry, "bridgeName": "br/../x"}, "is not an interface name"),
        ({**entry, "bridgeName": "br0\n"}, "is not an interface name"),
    ):
        with pytest.raises(AgentCommandError, match=message):
            netrules.with_dhcp(NetState(), [bad], rebuild=False)


def _userdata(vm: str, ip: str, text: bytes = b"#!/bin/sh\n") -> dict[str, Any]:
    return {
        "metadata": {"vmUuid": vm, "vmHostname": "web1"},
        "userdataList": [base64.b64encode(text).decode()],
        "vmIp": ip,
        "bridgeName": "br_eth1",
        "l3NetworkUuid": "l3",
    }


def test_userdata_is_laid_out_by_guest_address_and_released_by_its_own_vm_only() -> None:
    state = netrules.with_userdata(NetState(), [_userdata("vm1", "10.0.0.5")], rebuild=False)
    # By L3 network first: each network's metadata listener serves its own directory.
    assert netrender.render_userdata(state) == {
        "l3/10.0.0.5/latest/user-data": b"#!/bin/sh\n",
        "l3/10.0.0.5/latest/meta-data/instance-id": b"vm1",
        "l3/10.0.0.5/latest/meta-data/local-hostname": b"web1",
    }
    # No redirect: the metadata address is in the network's namespace.
    assert netrender.render_nat(state).rules == ()
    with pytest.raises(AgentCommandError, match="already has the userdata of VM vm1"):
        netrules.with_userdata(state, [_userdata("vm2", "10.0.0.5")], rebuild=False)
    # A release naming another VM (the address given again since) leaves it.
    kept = netrules.without_userdata(state, [{"vmUuid": "vm2", "vmIp": "10.0.0.5"}])
    assert set(kept.userdata) == {"l3/10.0.0.5"}
    assert netrules.without_userdata(state, [{"vmUuid": "vm1", "vmIp": "10.0.0.5"}]).userdata == {}
    # The same address on another network is another guest, with files of its own.
    other = {**_userdata("vm2", "10.0.0.5", b"other"), "l3NetworkUuid": "l3-b"}
    both = netrules.with_userdata(state, [other], rebuild=False)
    assert netrender.render_userdata(both)["l3-b/10.0.0.5/latest/user-data"] == b"other"
    released = netrules.without_userdata(
        both, [{"vmUuid": "vm2", "vmIp": "10.0.0.5", "l3NetworkUuid": "l3-b"}]
    )
    assert set(released.userdata) == {"l3/10.0.0.5"}


def test_the_metadata_server_reads_a_guest_its_own_files_only(tmp_path: Path) -> None:
    (tmp_path / "10.0.0.5" / "latest").mkdir(parents=True)
    (tmp_path / "10.0.0.5" / "latest" / "user-data").write_bytes(b"mine")
    (tmp_path / "10.0.0.6").mkdir()
    assert read_for(tmp_path, "10.0.0.5", "/latest/user-data") == b"mine"
    assert read_for(tmp_path, "10.0.0.5", "") == b"latest/\n"
    assert read_for(tmp_path, "10.0.0.6", "../10.0.0.5/latest/user-data") is None
    assert read_for(tmp_path, "10.0.0.5", "/latest/nothing") is None
    assert read_for(tmp_path, "not-an-address", "") is None


FLAT_ENTRY = {
    "mac": "fa:16:3e:00:00:02",
    "ip": "10.0.0.6",
    "netmask": "255.255.255.0",
    "gateway": "10.0.0.1",
    "bridgeName": "br_eth1_10",
    "l3NetworkUuid": "l3-a",
    "dhcpServerIp": "10.0.0.2",
}


def test_a_flat_network_gets_a_namespace_with_its_dhcp_server_and_metadata_address() -> None:
    state = netrules.with_dhcp(NetState(), [FLAT_ENTRY], rebuild=False)
    state = netrules.with_userdata(
        state,
        [{**_userdata("vm1", "10.0.0.6"), "l3NetworkUuid": "l3-a", "bridgeName": "br_eth1_10"}],
        rebuild=False,
    )
    outer, inner = dhcpns.veth_names("l3-a")
    assert (len(outer), len(inner)) == (14, 14)  # interface names stop at 15
    assert dhcpns.wanted(state, "zs-l3-") == {
        "l3-a": dhcpns.L3Namespace(
            l3="l3-a",
            name="zs-l3-l3-a",
            bridge="br_eth1_10",
            outer=outer,
            inner=inner,
            addresses=("10.0.0.2/24", "169.254.169.254/32"),
            serves_dhcp=True,
            serves_metadata=True,
        )
    }
    # The guests' route to the metadata address goes through the DHCP server (with the
    # default route: a client that takes option 121 ignores the router option).
    files = netrender.render_dnsmasq(state, netrender.by_l3)
    assert files["l3-a.opts"] == (
        "tag:zs0a00000024,option:router,10.0.0.1\n"
        "tag:zs0a00000024,option:classless-static-route,"
        "169.254.169.254/32,10.0.0.2,0.0.0.0/0,10.0.0.1\n"
    )
    assert netrender.dhcp_ranges(state, netrender.by_l3) == {
        "l3-a": ("set:zs0a00000024,10.0.0.0,static,255.255.255.0",)
    }
    # The L3 network deleted: nothing of it is wanted.
    assert dhcpns.wanted(netrules.without_l3(state, "l3-a"), "zs-l3-") == {}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"dhcpServerIp": None}, "needs l3NetworkUuid, dhcpServerIp and netmask"),
        ({"l3NetworkUuid": None}, "needs l3NetworkUuid, dhcpServerIp and netmask"),
        ({"dhcpServerIp": "10.0.1.2"}, "is not another address of 10.0.0.0/24"),
        ({"dhcpServerIp": "10.0.0.6"}, "is not another address of 10.0.0.0/24"),
        ({"mac": "fa:16:3e:00:00:03", "ip": "10.0.0.7", "bridgeName": "br2"}, "is on bridge"),
        (
            {"mac": "fa:16:3e:00:00:03", "ip": "10.0.0.7", "dhcpServerIp": "10.0.0.3"},
            "has DHCP server",
        ),
    ],
)
def test_a_flat_network_that_cannot_be_served_is_refused(
    change: dict[str, Any], message: str
) -> None:
    entries = [FLAT_ENTRY, {**FLAT_ENTRY, **change}]
    if "mac" not in change:
        entries = entries[1:]
    state = netrules.with_dhcp(NetState(), entries, rebuild=False)
    with pytest.raises(AgentCommandError, match=message):
        dhcpns.wanted(state, "zs-l3-")


def test_an_l3_uuid_that_could_name_a_path_is_refused() -> None:
    with pytest.raises(AgentCommandError, match="is not a uuid"):
        netrules.with_dhcp(NetState(), [{**FLAT_ENTRY, "l3NetworkUuid": "../x"}], rebuild=False)
