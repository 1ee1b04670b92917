"""The appliance agent's state and rendering (pure): what the nat table, dnsmasq and
haproxy are given for what the node said, and input refused before anything is kept."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from agents.runtime import AgentCommandError
from agents.vrouter import render, router
from agents.vrouter.agent import RouterAgent
from agents.vrouter.config import RouterConfig
from agents.vrouter.router import RouterState
from simulator.appliance import COMMANDS

NICS = [
    {"ip": "192.168.0.9", "role": "management"},
    {"ip": "198.51.100.2", "mac": "fa:16:3e:00:01:01", "role": "public"},
    {
        "ip": "10.0.0.2",
        "mac": "fa:16:3e:00:02:01",
        "netmask": "255.255.255.0",
        "gateway": "10.0.0.1",
        "role": "guest",
    },
]


def listener(uuid: str, protocol: str, port: int, *ips: str) -> dict[str, Any]:
    nics = [{"uuid": f"nic{i}", "ip": ip, "mac": "m"} for i, ip in enumerate(ips)]
    return {
        "listenerUuid": uuid,
        "protocol": protocol,
        "loadBalancerPort": port,
        "instancePort": port + 8000,
        "nics": nics,
    }


def lb(*listeners: dict[str, Any], uuid: str = "lb1") -> dict[str, Any]:
    return {"lbUuid": uuid, "vipIp": "198.51.100.20", "listeners": list(listeners)}


def test_https_is_passed_through_and_a_listener_without_backends_is_not_served() -> None:
    state = router.with_nics(RouterState(), NICS)
    state = router.with_lbs(
        state,
        [lb(listener("a", "https", 443, "10.0.0.5"), listener("b", "http", 80))],
        rebuild=True,
    )
    conf = render.haproxy_conf(state)
    assert conf is not None
    assert "frontend listener-a\n    mode tcp\n    bind 198.51.100.20:443\n" in conf
    assert "    source 10.0.0.2\n    server nic-nic0 10.0.0.5:8443\n" in conf
    assert "listener-b" not in conf
    assert render.haproxy_conf(router.without_lbs(state, [{"lbUuid": "lb1"}])) is None


def test_udp_listeners_share_packets_equally_over_their_backends() -> None:
    state = router.with_lbs(
        RouterState(),
        [lb(listener("u", "udp", 53, "10.0.0.7", "10.0.0.5", "10.0.0.6"))],
        rebuild=True,
    )
    rules = render.render_nat(state, None).rules
    assert [r.rsplit(" ", 1)[1] for r in rules] == [
        "10.0.0.5:8053",
        "10.0.0.6:8053",
        "10.0.0.7:8053",
    ]
    assert "--every 3 --packet 0" in rules[0]
    assert "--every 2 --packet 0" in rules[1]
    assert "statistic" not in rules[2]


def test_dnsmasq_serves_the_guest_network_and_asks_upstream_servers_only() -> None:
    entry: dict[str, Any] = {"ip": "10.0.0.5", "mac": "fa:16:3e:00:00:05"}
    entry |= {"netmask": "255.255.255.0", "gateway": "10.0.0.1"}
    entry |= {"dns": ["10.0.0.1", "8.8.8.8"], "dnsDomain": "lan"}
    state = router.with_nics(RouterState(), NICS)
    assert render.dnsmasq_conf(RouterState(), "eth2", Path("/d"), Path("/r")) is None
    dns_only = render.dnsmasq_conf(state, "eth2", Path("/d"), Path("/r"))
    assert dns_only is not None
    assert "dhcp-range" not in dns_only
    state = router.with_dhcp(state, [entry], rebuild=True)
    conf = render.dnsmasq_conf(state, "eth2", Path("/d"), Path("/r"))
    assert conf is not None
    assert "interface=eth2\n" in conf
    assert "dhcp-range=set:zs0a00000024,10.0.0.0,static,255.255.255.0\n" in conf
    assert "dhcp-hostsfile=/d/guest.hosts\n" in conf
    # The router's own address is no upstream server (it would ask itself).
    assert "server=8.8.8.8\n" in conf
    assert "server=10.0.0.1" not in conf
    assert "local=/lan/\n" in conf


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda s: router.with_nics(s, [{"role": "side", "ip": "10.0.0.1"}]), "role"),
        (lambda s: router.with_snats(s, [{"privateNicMac": "x"}], rebuild=False), "privateNicIp"),
        (
            lambda s: router.with_lbs(
                s, [lb(listener("a", "sctp", 80, "10.0.0.5"))], rebuild=False
            ),
            "protocol",
        ),
        (
            lambda s: router.with_lbs(
                s,
                [
                    lb(listener("a", "tcp", 80, "10.0.0.5")),
                    lb(listener("b", "http", 80), uuid="lb2"),
                ],
                rebuild=False,
            ),
            "is taken by listener a",
        ),
        (lambda s: router.with_lbs(s, [lb(listener("a b", "tcp", 80))], rebuild=False), "uuid"),
    ],
)
def test_bad_input_is_refused(make: Any, message: str) -> None:
    with pytest.raises(AgentCommandError, match=message):
        make(RouterState())


def test_the_kept_state_reads_back_as_it_was() -> None:
    state = router.with_nics(RouterState(), NICS)
    snat = {
        "privateNicMac": "fa:16:3e:00:02:01",
        "privateNicIp": "10.0.0.1",
        "snatNetmask": "255.255.255.0",
        "publicIp": "198.51.100.2",
        "publicNicMac": "fa:16:3e:00:01:01",
    }
    state = router.with_snats(state, [snat], rebuild=True)
    state = router.with_eips(
        state, [{"eipUuid": "e", "vipIp": "198.51.100.7", "guestIp": "10.0.0.5"}], rebuild=False
    )
    state = router.with_lbs(state, [lb(listener("a", "tcp", 80, "10.0.0.5"))], rebuild=False)
    again = RouterState.from_json(state.to_json())
    assert again == state
    assert render.render_nat(again, "eth1") == render.render_nat(state, "eth1")
    assert again.vips() == {"198.51.100.7", "198.51.100.20"}


def test_the_agent_serves_every_command_the_simulated_appliance_does(tmp_path: Path) -> None:
    agent = RouterAgent(RouterConfig(state_dir=tmp_path, token_file=tmp_path / "token"))
    for path, simulated in COMMANDS.items():
        served = agent.runtime.lookup(path)
        assert served is not None, path
        assert served.sync == simulated.sync, path
