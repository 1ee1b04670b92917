"""The virtual-router appliance's agent (port 7272): what the node configures inside the
appliance VM. The machine keeps it, so tests can check it: its NICs (from ``/init``),
DHCP entries (by MAC), SNAT (by private NIC MAC), EIPs (by VIP), port forwarding (by VIP,
protocol and ports) and load balancers (by uuid).

An appliance boots when its VM starts: the node's boot call (the simulator's deploy on
this port) revives the machine with an empty configuration, as a fresh boot of the image.
Add and remove commands succeed when repeated; ``rebuild`` replaces the whole table.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from agents.runtime import AgentCommandError
from simulator.commands import SimCommand, field_str
from simulator.machine import Machine


@dataclass(slots=True, eq=False)
class ApplianceState:
    nics: list[dict[str, Any]] = field(default_factory=list)
    dhcp: dict[str, dict[str, Any]] = field(default_factory=dict)  # mac -> entry
    snat: dict[str, dict[str, Any]] = field(default_factory=dict)  # private mac -> rule
    eips: dict[str, dict[str, Any]] = field(default_factory=dict)  # vip -> entry
    # "vip:protocol:start-end" -> rule
    forwards: dict[str, dict[str, Any]] = field(default_factory=dict)
    lbs: dict[str, dict[str, Any]] = field(default_factory=dict)  # load balancer uuid -> TO
    inits: int = 0

    def view(self) -> dict[str, Any]:
        return {
            "nics": list(self.nics),
            "dhcp": dict(self.dhcp),
            "snat": dict(self.snat),
            "eips": dict(self.eips),
            "portForwarding": dict(self.forwards),
            "loadBalancers": dict(self.lbs),
            "inits": self.inits,
        }


def appliance_of(machine: Machine) -> ApplianceState:
    if machine.appliance is None:
        machine.appliance = ApplianceState()
    return machine.appliance


def _dicts(cmd: dict[str, Any], name: str) -> list[dict[str, Any]]:
    items = cmd.get(name) or []
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise AgentCommandError(f"{name} must be a list of objects")
    return items


def _forward_key(rule: dict[str, Any]) -> str:
    return (
        f"{field_str(rule, 'vipIp')}:{field_str(rule, 'protocolType')}:"
        f"{rule.get('vipPortStart')}-{rule.get('vipPortEnd')}"
    )


def init(machine: Machine, cmd: dict[str, Any]) -> dict[str, Any]:
    state = appliance_of(machine)
    state.nics = _dicts(cmd, "nics")
    state.inits += 1
    return {}


def ping(machine: Machine, cmd: dict[str, Any]) -> dict[str, Any]:
    return {"uuid": cmd.get("uuid")}


def echo(machine: Machine, cmd: dict[str, Any]) -> dict[str, Any]:
    return {}


def _table(name: str, key: str) -> tuple[SimCommand, SimCommand]:
    """An add command (``rebuild`` replaces the table) and a remove command for the table
    ``name`` of the appliance, whose entries the command lists under ``name`` too and
    which are keyed by their field ``key`` (or the port-forwarding key)."""

    def key_of(entry: dict[str, Any]) -> str:
        return _forward_key(entry) if key == "forward" else field_str(entry, key)

    def add(machine: Machine, cmd: dict[str, Any]) -> dict[str, Any]:
        table: dict[str, dict[str, Any]] = getattr(appliance_of(machine), _ATTR[name])
        if cmd.get("rebuild") is True:
            table.clear()
        for entry in _dicts(cmd, name):
            table[key_of(entry)] = entry
        return {}

    def remove(machine: Machine, cmd: dict[str, Any]) -> dict[str, Any]:
        table: dict[str, dict[str, Any]] = getattr(appliance_of(machine), _ATTR[name])
        for entry in _dicts(cmd, name):
            table.pop(key_of(entry), None)
        return {}

    return SimCommand(add), SimCommand(remove)


_ATTR = {"dhcp": "dhcp", "snats": "snat", "eips": "eips", "rules": "forwards", "lbs": "lbs"}

_DHCP = _table("dhcp", "mac")
_SNAT = _table("snats", "privateNicMac")
_EIP = _table("eips", "vipIp")
_FORWARD = _table("rules", "forward")
_LB = _table("lbs", "lbUuid")

COMMANDS: dict[str, SimCommand] = {
    "/init": SimCommand(init),
    "/ping": SimCommand(ping),
    "/echo": SimCommand(echo, sync=True),
    "/adddhcp": _DHCP[0],
    "/removedhcp": _DHCP[1],
    "/setsnat": _SNAT[0],
    "/removesnat": _SNAT[1],
    "/createeip": _EIP[0],
    "/removeeip": _EIP[1],
    "/createportforwarding": _FORWARD[0],
    "/revokeportforwarding": _FORWARD[1],
    "/refreshlb": _LB[0],
    "/deletelb": _LB[1],
}
