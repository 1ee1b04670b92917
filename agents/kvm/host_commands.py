"""Host and network commands of the KVM agent: connect, echo, ping, facts, capacity,
physical interface checks and the bridges of L2 NoVlan/Vlan networks."""

from __future__ import annotations

import platform
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import libvirt

from agents.kvm.config import AgentConfig
from agents.kvm.hypervisor import Hypervisor, is_missing
from agents.kvm.libvirt_xml import bridge_xml, need_str, parse
from agents.kvm.vm_commands import all_vm_states
from agents.runtime import AgentCommandError, AgentRuntime

MIB = 1024 * 1024


@dataclass
class HostState:
    """What the node told this agent: its host uuid and protocol version (echoed by
    ``/host/ping``, where the node checks both)."""

    host_uuid: str | None = None
    version: str | None = None


def _version(number: int) -> str:
    """libvirt's packed version (major * 1,000,000 + minor * 1,000 + micro) as text."""
    return f"{number // 1_000_000}.{number // 1000 % 1000}.{number % 1000}"


def _versions(conn: libvirt.virConnect) -> dict[str, str]:
    return {
        "libvirtVersion": _version(conn.getLibVersion()),
        "qemuVersion": _version(conn.getVersion()),
    }


def _used_by_domains(conn: libvirt.virConnect) -> tuple[int, int]:
    """(vCPUs, bytes of memory) of the running and paused domains."""
    cpus = memory = 0
    for dom in conn.listAllDomains(libvirt.VIR_CONNECT_LIST_DOMAINS_ACTIVE):
        _state, max_kib, _kib, vcpus, _time = dom.info()
        cpus += vcpus
        memory += max_kib * 1024
    return cpus, memory


def _capacity(conn: libvirt.virConnect) -> dict[str, Any]:
    _model, memory_mib, cpus, mhz, _nodes, sockets, _cores, _threads = conn.getInfo()
    used_cpu, used_memory = _used_by_domains(conn)
    return {
        "cpuNum": cpus,
        "cpuSpeed": mhz,
        "cpuSockets": sockets,
        "usedCpu": used_cpu,
        "totalMemory": memory_mib * MIB,
        "usedMemory": used_memory,
    }


def _arch(conn: libvirt.virConnect) -> str:
    caps = parse(conn.getCapabilities())
    return caps.findtext("host/cpu/arch") or platform.machine()


def _os_release() -> dict[str, str]:
    fields: dict[str, str] = {}
    try:
        text = Path("/etc/os-release").read_text(encoding="utf-8")
    except OSError:
        return fields
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            fields[key.strip()] = value.strip().strip('"')
    return fields


def _facts(conn: libvirt.virConnect) -> dict[str, Any]:
    release = _os_release()
    model, _mem, _cpus, _mhz, _nodes, sockets, _cores, _threads = conn.getInfo()
    versions = _versions(conn)
    return {
        "osDistribution": release.get("ID", platform.system()),
        "osVersion": release.get("VERSION_ID", platform.release()),
        "osRelease": release.get("VERSION_CODENAME", ""),
        "qemuImgVersion": versions["qemuVersion"],
        "libvirtVersion": versions["libvirtVersion"],
        "hvmCpuFlag": "",
        "cpuArchitecture": _arch(conn),
        "cpuModelName": model,
        "cpuSockets": sockets,
        "libvirtDriver": conn.getType(),
    }


def _interfaces(conn: libvirt.virConnect) -> list[str]:
    return [i.name() for i in conn.listAllInterfaces(0)]


def _ensure_bridge(conn: libvirt.virConnect, bridge: str, interface: str, vlan: int | None) -> None:
    try:
        existing = conn.interfaceLookupByName(bridge)
    except libvirt.libvirtError as exc:
        if not is_missing(exc):
            raise
        existing = conn.interfaceDefineXML(bridge_xml(bridge, interface, vlan), 0)
    # Creating an existing bridge again succeeds: reconnects send the command every time.
    if not existing.isActive():
        existing.create(0)


class HostCommands:
    def __init__(
        self, runtime: AgentRuntime, hv: Hypervisor, config: AgentConfig, state: HostState
    ) -> None:
        self.runtime, self.hv, self.config, self.state = runtime, hv, config, state

    def register(self) -> None:
        rt = self.runtime
        rt.command("/host/connect", self.connect, sync=True)
        rt.command("/host/echo", self.echo, sync=True)
        rt.command("/network/checkphysicalnetworkinterface", self.check_interfaces, sync=True)
        rt.command("/host/ping", self.ping)
        rt.command("/host/capacity", self.capacity)
        rt.command("/host/fact", self.fact)
        rt.command("/network/l2novlan/createbridge", self.create_bridge)
        rt.command("/network/l2vlan/createbridge", self.create_vlan_bridge)

    async def connect(self, cmd: dict[str, Any]) -> dict[str, Any]:
        # The runtime already took sendCommandUrl from the body.
        self.state.host_uuid = need_str(cmd, "hostUuid")
        version = cmd.get("version")
        self.state.version = version if isinstance(version, str) else None
        return await self.hv.call("read the libvirt and QEMU versions", _versions)

    async def echo(self, cmd: dict[str, Any]) -> dict[str, Any]:
        return {}

    async def ping(self, cmd: dict[str, Any]) -> dict[str, Any]:
        # Proves libvirt answers too: a host whose libvirtd is down is not healthy.
        extra: dict[str, Any] = {}
        if cmd.get("withVmStates") is True:
            # Our addition: the VM list of /vm/vmsync in the answer, so the node's ping
            # and its VM sync are one call.
            extra["vmStates"] = await self.hv.call("list the host's VMs", all_vm_states)
        else:
            await self.hv.call("reach libvirt", lambda conn: conn.getLibVersion())
        return {
            **extra,
            "hostUuid": self.state.host_uuid,
            "sendCommandUrl": self.runtime.send_command_url,
            "version": self.state.version,
        }

    async def capacity(self, cmd: dict[str, Any]) -> dict[str, Any]:
        return await self.hv.call("read the host's capacity", _capacity)

    async def fact(self, cmd: dict[str, Any]) -> dict[str, Any]:
        return await self.hv.call("read the host's facts", _facts)

    async def check_interfaces(self, cmd: dict[str, Any]) -> dict[str, Any]:
        names = cmd.get("interfaceNames") or []
        if not isinstance(names, list):
            raise AgentCommandError("interfaceNames must be a list")
        have = list(self.config.physical_interfaces) or await self.hv.call(
            "list the host's interfaces", _interfaces
        )
        missing = [str(n) for n in names if n not in have]
        if missing:
            raise AgentCommandError(
                f"no physical interface {', '.join(missing)} on this host "
                f"(it has {', '.join(have) or 'none'})"
            )
        return {}

    async def create_bridge(self, cmd: dict[str, Any]) -> dict[str, Any]:
        return await self._bridge(cmd, None)

    async def create_vlan_bridge(self, cmd: dict[str, Any]) -> dict[str, Any]:
        vlan = cmd.get("vlan")
        if isinstance(vlan, bool) or not isinstance(vlan, int) or not 1 <= vlan <= 4094:
            raise AgentCommandError(f"vlan must be an integer in 1..4094, not {vlan!r}")
        return await self._bridge(cmd, vlan)

    async def _bridge(self, cmd: dict[str, Any], vlan: int | None) -> dict[str, Any]:
        interface = need_str(cmd, "physicalInterfaceName")
        bridge = need_str(cmd, "bridgeName")
        await self.hv.call(
            f"create bridge {bridge} on {interface}", _ensure_bridge, bridge, interface, vlan
        )
        return {}
