"""KVM agent (port 7070): network services applied on the host. The machine keeps what it
holds, so tests can check it: DHCP entries (by MAC), the security-group rule set of each
member NIC it runs with the groups' member addresses, the EIP NAT table (by VIP), the
port-forwarding table (by VIP, protocol and ports) and the userdata it serves (by VM).

``/securitygroup/refreshrulesonhost`` replaces the whole rule set (the node always sends
all of it); EIP and DHCP commands add or remove entries and succeed when repeated, and
replace the whole table when the command says ``rebuild`` (a reconnect). A DHCP entry
needs its L3 network and DHCP server address, as the real agent's namespaces do
(``agents/kvm/dhcpns.py``); ``dhcp/deletenamespace`` drops an L3 network's entries.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from agents.runtime import AgentCommandError
from simulator.commands import SimCommand, field_str
from simulator.machine import Machine


@dataclass(slots=True, eq=False)
class NetworkState:
    dhcp: dict[str, dict[str, Any]] = field(default_factory=dict)  # mac -> entry
    rules: dict[str, dict[str, Any]] = field(default_factory=dict)  # nic uuid -> rule TO
    members: dict[str, list[str]] = field(default_factory=dict)  # group -> addresses
    nat: dict[str, dict[str, Any]] = field(default_factory=dict)  # vip -> EIP entry
    # "vip:protocol:start-end" -> port-forwarding rule
    forwards: dict[str, dict[str, Any]] = field(default_factory=dict)
    userdata: dict[str, dict[str, Any]] = field(default_factory=dict)  # vm uuid -> entry
    refreshes: int = 0  # rule-set refreshes taken

    def view(self) -> dict[str, Any]:
        return {
            "dhcp": dict(self.dhcp),
            "securityGroupRules": dict(self.rules),
            "securityGroupMembers": dict(self.members),
            "nat": dict(self.nat),
            "portForwarding": dict(self.forwards),
            "userdata": dict(self.userdata),
            "securityGroupRefreshes": self.refreshes,
        }


def network_of(machine: Machine) -> NetworkState:
    if machine.network is None:
        machine.network = NetworkState()
    return machine.network


def _dicts(cmd: dict[str, Any], name: str) -> list[dict[str, Any]]:
    items = cmd.get(name) or []
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise AgentCommandError(f"{name} must be a list of objects")
    return items


def refresh_rules(machine: Machine, cmd: dict[str, Any]) -> dict[str, Any]:
    tos = _dicts(cmd, "ruleTOs")
    members = cmd.get("securityGroupMembers") or {}
    if not isinstance(members, dict):
        raise AgentCommandError("securityGroupMembers must be an object")
    state = network_of(machine)
    state.rules = {field_str(to, "vmNicUuid"): to for to in tos}
    state.members = {str(k): list(v) for k, v in members.items()}
    state.refreshes += 1
    return {}


def apply_dhcp(machine: Machine, cmd: dict[str, Any]) -> dict[str, Any]:
    state = network_of(machine)
    for entry in _dicts(cmd, "dhcp"):
        field_str(entry, "l3NetworkUuid")
        field_str(entry, "dhcpServerIp")  # refused whole, before anything changes
    if cmd.get("rebuild") is True:
        state.dhcp = {}  # the whole table follows
    for entry in _dicts(cmd, "dhcp"):
        state.dhcp[field_str(entry, "mac")] = entry
    return {}


def release_dhcp(machine: Machine, cmd: dict[str, Any]) -> dict[str, Any]:
    state = network_of(machine)
    for entry in _dicts(cmd, "dhcp"):
        state.dhcp.pop(field_str(entry, "mac"), None)
    return {}


def delete_namespace(machine: Machine, cmd: dict[str, Any]) -> dict[str, Any]:
    state = network_of(machine)
    l3 = field_str(cmd, "l3NetworkUuid")
    state.dhcp = {mac: e for mac, e in state.dhcp.items() if e.get("l3NetworkUuid") != l3}
    state.userdata = {vm: e for vm, e in state.userdata.items() if e.get("l3NetworkUuid") != l3}
    return {}


def _eips(cmd: dict[str, Any]) -> list[dict[str, Any]]:
    single = cmd.get("eip")
    if isinstance(single, dict):
        return [single]
    return _dicts(cmd, "eips")


def apply_eip(machine: Machine, cmd: dict[str, Any]) -> dict[str, Any]:
    state = network_of(machine)
    if cmd.get("rebuild") is True:
        state.nat = {}  # the whole table follows
    for eip in _eips(cmd):
        vip = field_str(eip, "vip")
        held = state.nat.get(vip)
        if held is not None and held.get("eipUuid") != eip.get("eipUuid"):
            raise AgentCommandError(f"{vip} is already NATed on {machine.address} for another EIP")
        state.nat[vip] = eip
    return {}


def delete_eip(machine: Machine, cmd: dict[str, Any]) -> dict[str, Any]:
    state = network_of(machine)
    for eip in _eips(cmd):
        vip = field_str(eip, "vip")
        held = state.nat.get(vip)
        if held is not None and held.get("eipUuid") == eip.get("eipUuid"):
            del state.nat[vip]
    return {}


def _rules(cmd: dict[str, Any]) -> list[dict[str, Any]]:
    single = cmd.get("rule")
    if isinstance(single, dict):
        return [single]
    return _dicts(cmd, "rules")


def _forward_key(rule: dict[str, Any]) -> str:
    start, end = rule.get("vipPortStart"), rule.get("vipPortEnd")
    return f"{field_str(rule, 'vip')}:{field_str(rule, 'protocolType')}:{start}-{end}"


def apply_forwards(machine: Machine, cmd: dict[str, Any]) -> dict[str, Any]:
    state = network_of(machine)
    if cmd.get("rebuild") is True:
        state.forwards = {}  # the whole table follows
    for rule in _rules(cmd):
        key = _forward_key(rule)
        held = state.forwards.get(key)
        if held is not None and held.get("uuid") != rule.get("uuid"):
            raise AgentCommandError(f"{key} is already forwarded on {machine.address}")
        state.forwards[key] = rule
    return {}


def delete_forwards(machine: Machine, cmd: dict[str, Any]) -> dict[str, Any]:
    state = network_of(machine)
    for rule in _rules(cmd):
        key = _forward_key(rule)
        held = state.forwards.get(key)
        if held is not None and held.get("uuid") == rule.get("uuid"):
            del state.forwards[key]
    return {}


def _userdata_vm(entry: dict[str, Any]) -> str:
    metadata = entry.get("metadata")
    if not isinstance(metadata, dict):
        raise AgentCommandError("a userdata entry needs a metadata object")
    return field_str(metadata, "vmUuid")


def apply_userdata(machine: Machine, cmd: dict[str, Any]) -> dict[str, Any]:
    state = network_of(machine)
    single = cmd.get("userdata")
    entries = [single] if isinstance(single, dict) else _dicts(cmd, "userdata")
    for entry in entries:  # validated whole before anything changes
        _userdata_vm(entry)
        field_str(entry, "vmIp")
    if cmd.get("rebuild") is True:
        state.userdata = {}  # the whole table follows
    for entry in entries:
        state.userdata[_userdata_vm(entry)] = entry
    return {}


def release_userdata(machine: Machine, cmd: dict[str, Any]) -> dict[str, Any]:
    state = network_of(machine)
    for entry in _dicts(cmd, "userdata"):
        state.userdata.pop(field_str(entry, "vmUuid"), None)
    return {}


COMMANDS: dict[str, SimCommand] = {
    "/securitygroup/refreshrulesonhost": SimCommand(refresh_rules),
    "/flatnetworkprovider/dhcp/apply": SimCommand(apply_dhcp),
    "/flatnetworkprovider/dhcp/release": SimCommand(release_dhcp),
    "/flatnetworkprovider/dhcp/deletenamespace": SimCommand(delete_namespace),
    "/flatnetworkprovider/eip/apply": SimCommand(apply_eip),
    "/flatnetworkprovider/eip/batchapply": SimCommand(apply_eip),
    "/flatnetworkprovider/eip/delete": SimCommand(delete_eip),
    "/flatnetworkprovider/eip/batchdelete": SimCommand(delete_eip),
    "/flatnetworkprovider/portforwarding/apply": SimCommand(apply_forwards),
    "/flatnetworkprovider/portforwarding/batchapply": SimCommand(apply_forwards),
    "/flatnetworkprovider/portforwarding/delete": SimCommand(delete_forwards),
    "/flatnetworkprovider/portforwarding/batchdelete": SimCommand(delete_forwards),
    "/flatnetworkprovider/userdata/apply": SimCommand(apply_userdata),
    "/flatnetworkprovider/userdata/batchapply": SimCommand(apply_userdata),
    "/flatnetworkprovider/userdata/release": SimCommand(release_userdata),
}
