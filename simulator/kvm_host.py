"""KVM agent (port 7070): host and network commands.

Field names follow ZStack's ``KVMAgentCommands`` (reference §4.3).
"""

from __future__ import annotations

from typing import Any

from agents.runtime import AgentCommandError
from simulator.commands import SimCommand, field_int, field_str
from simulator.machine import Machine, vm_states

LIBVIRT_VERSION = "10.0.0"
QEMU_VERSION = "8.2.0"


def connect(machine: Machine, cmd: dict[str, Any]) -> dict[str, Any]:
    # The runtime already stored sendCommandUrl; the host uuid and version are the node's.
    machine.host_uuid = field_str(cmd, "hostUuid")
    version = cmd.get("version")
    machine.version = version if isinstance(version, str) else None
    return {"libvirtVersion": LIBVIRT_VERSION, "qemuVersion": QEMU_VERSION}


def echo(machine: Machine, cmd: dict[str, Any]) -> dict[str, Any]:
    return {}


def check_physical_interfaces(machine: Machine, cmd: dict[str, Any]) -> dict[str, Any]:
    names = cmd.get("interfaceNames") or []
    if not isinstance(names, list):
        raise AgentCommandError("interfaceNames must be a list")
    missing = [n for n in names if n not in machine.physical_interfaces]
    if missing:
        raise AgentCommandError(
            f"no physical interface {', '.join(map(str, missing))} on {machine.address} "
            f"(it has {', '.join(machine.physical_interfaces)})"
        )
    return {}


def ping(machine: Machine, cmd: dict[str, Any]) -> dict[str, Any]:
    # The node compares hostUuid and version with its own and reconnects on a mismatch.
    answer: dict[str, Any] = {
        "hostUuid": machine.host_uuid,
        "sendCommandUrl": machine.agent.send_command_url if machine.agent else None,
        "version": machine.version,
    }
    if cmd.get("withVmStates") is True and machine.ping_vm_states:
        answer["vmStates"] = vm_states(machine)
    return answer


def capacity(machine: Machine, cmd: dict[str, Any]) -> dict[str, Any]:
    return {
        "cpuNum": machine.cpu_num,
        "cpuSpeed": machine.cpu_speed,
        "usedCpu": machine.used_cpu,
        "totalMemory": machine.memory_size,
        "usedMemory": machine.used_memory,
        "cpuSockets": machine.cpu_sockets,
    }


def fact(machine: Machine, cmd: dict[str, Any]) -> dict[str, Any]:
    return {
        "osDistribution": "Rocky",
        "osVersion": "9.4",
        "osRelease": "Blue Onyx",
        "qemuImgVersion": QEMU_VERSION,
        "libvirtVersion": LIBVIRT_VERSION,
        "hvmCpuFlag": "vmx",
        "cpuArchitecture": "x86_64",
        "cpuModelName": "Simulated x86_64 CPU",
        "cpuSockets": machine.cpu_sockets,
    }


def create_bridge(machine: Machine, cmd: dict[str, Any]) -> dict[str, Any]:
    interface = field_str(cmd, "physicalInterfaceName")
    bridge = field_str(cmd, "bridgeName")
    if interface not in machine.physical_interfaces:
        raise AgentCommandError(
            f"cannot create bridge {bridge}: no physical interface {interface} on {machine.address}"
        )
    vlan = cmd.get("vlan")
    if vlan is not None and (isinstance(vlan, bool) or not isinstance(vlan, int)):
        raise AgentCommandError("vlan must be an integer")
    if machine.bridges is None:
        machine.bridges = {}
    # Creating an existing bridge again succeeds, as on a real host (reconnects do it).
    machine.bridges[bridge] = {
        "physicalInterfaceName": interface,
        "l2NetworkUuid": cmd.get("l2NetworkUuid"),
        "vlan": vlan,
    }
    return {}


def create_vlan_bridge(machine: Machine, cmd: dict[str, Any]) -> dict[str, Any]:
    vlan = field_int(cmd, "vlan")
    if not 1 <= vlan <= 4094:
        raise AgentCommandError(f"vlan {vlan} is outside 1..4094")
    return create_bridge(machine, cmd)


COMMANDS: dict[str, SimCommand] = {
    "/host/connect": SimCommand(connect, sync=True),
    "/host/echo": SimCommand(echo, sync=True),
    "/network/checkphysicalnetworkinterface": SimCommand(check_physical_interfaces, sync=True),
    "/host/ping": SimCommand(ping),
    "/host/capacity": SimCommand(capacity),
    "/host/fact": SimCommand(fact),
    "/network/l2novlan/createbridge": SimCommand(create_bridge),
    "/network/l2vlan/createbridge": SimCommand(create_vlan_bridge),
}
