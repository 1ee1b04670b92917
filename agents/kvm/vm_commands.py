"""VM commands of the KVM agent: lifecycle, state sync, migration, devices, snapshots.

As ZStack's agent does, a VM is defined while it runs and undefined when it stops: the
node keeps the VM's definition and sends it whole with every ``/vm/start``. So stop and
destroy of an unknown VM succeed (the node may retry them), ``/vm/checkstate`` calls an
unknown VM "Shutdown", and starting a VM that already runs changes nothing.
"""

from __future__ import annotations

import asyncio
import os
import posixpath
import re
import xml.etree.ElementTree as ET
from typing import Any

import libvirt

from agents.kvm.capabilities import GuestSupport, guest_support
from agents.kvm.config import AgentConfig
from agents.kvm.hypervisor import Hypervisor, is_missing
from agents.kvm.libvirt_xml import (
    device_text,
    disk_target,
    disk_xml,
    domain_xml,
    need_str,
    parse,
    snapshot_xml,
)
from agents.kvm.pools import create_volume, volume_size
from agents.runtime import AgentCommandError, AgentRuntime

# libvirt's domain states in ZStack's words (KVMConstant.KvmVmState).
STATES = {
    libvirt.VIR_DOMAIN_NOSTATE: "NoState",
    libvirt.VIR_DOMAIN_RUNNING: "Running",
    libvirt.VIR_DOMAIN_BLOCKED: "Running",
    libvirt.VIR_DOMAIN_PAUSED: "Paused",
    libvirt.VIR_DOMAIN_SHUTDOWN: "Running",  # still shutting down
    libvirt.VIR_DOMAIN_SHUTOFF: "Shutdown",
    libvirt.VIR_DOMAIN_CRASHED: "Crashed",
    libvirt.VIR_DOMAIN_PMSUSPENDED: "Paused",
}
SHUTDOWN = "Shutdown"
_VM_NAME = re.compile(r"^[0-9a-f]{32}$")  # domains the node made; others are not its VMs
_SHUTDOWN_POLL_S = 0.5
_RELEASE_POLL_S = 0.25
_LIVE = libvirt.VIR_DOMAIN_AFFECT_LIVE


def _domain(conn: libvirt.virConnect, vm_uuid: str) -> libvirt.virDomain | None:
    try:
        return conn.lookupByName(vm_uuid)
    except libvirt.libvirtError as exc:
        if is_missing(exc):
            return None
        raise


def _require(conn: libvirt.virConnect, vm_uuid: str) -> libvirt.virDomain:
    dom = _domain(conn, vm_uuid)
    if dom is None:
        raise AgentCommandError(f"vm {vm_uuid} is not on this host")
    return dom


def _state(conn: libvirt.virConnect, vm_uuid: str) -> str:
    dom = _domain(conn, vm_uuid)
    if dom is None:
        return SHUTDOWN
    state, _reason = dom.state()
    return STATES.get(state, "NoState")


def _start(conn: libvirt.virConnect, vm_uuid: str, xml: str) -> None:
    dom = _domain(conn, vm_uuid)
    if dom is not None and dom.isActive():
        return  # already running: a retried start is a no-op
    if dom is not None:
        dom.undefine()  # a leftover definition: the node's is the one that counts
    conn.defineXML(xml).create()


def _destroy(conn: libvirt.virConnect, vm_uuid: str) -> None:
    dom = _domain(conn, vm_uuid)
    if dom is None:
        return
    if dom.isActive():
        dom.destroy()
    dom.undefine()


def _shutdown(conn: libvirt.virConnect, vm_uuid: str) -> bool:
    """Ask the guest to power off; False when the VM is not running at all."""
    dom = _domain(conn, vm_uuid)
    if dom is None or not dom.isActive():
        return False
    dom.shutdown()
    return True


def _reboot(conn: libvirt.virConnect, vm_uuid: str) -> None:
    _require(conn, vm_uuid).reboot(0)


def _pause(conn: libvirt.virConnect, vm_uuid: str) -> None:
    dom = _require(conn, vm_uuid)
    if dom.state()[0] != libvirt.VIR_DOMAIN_PAUSED:
        dom.suspend()


def _resume(conn: libvirt.virConnect, vm_uuid: str) -> None:
    dom = _require(conn, vm_uuid)
    if dom.state()[0] == libvirt.VIR_DOMAIN_PAUSED:
        dom.resume()


def all_vm_states(conn: libvirt.virConnect) -> dict[str, str]:
    states = {}
    for dom in conn.listAllDomains(libvirt.VIR_CONNECT_LIST_DOMAINS_ACTIVE):
        name = dom.name()
        if _VM_NAME.match(name):
            states[name] = STATES.get(dom.state()[0], "NoState")
    return states


def _migrate(conn: libvirt.virConnect, vm_uuid: str, dest_uri: str) -> None:
    flags = (
        libvirt.VIR_MIGRATE_LIVE
        | libvirt.VIR_MIGRATE_PEER2PEER
        | libvirt.VIR_MIGRATE_PERSIST_DEST
        | libvirt.VIR_MIGRATE_UNDEFINE_SOURCE
    )
    _require(conn, vm_uuid).migrateToURI3(dest_uri, {}, flags)


def _attach(conn: libvirt.virConnect, vm_uuid: str, xml: str) -> None:
    _require(conn, vm_uuid).attachDeviceFlags(xml, _LIVE)


def _disk_of(dom: libvirt.virDomain, path: str) -> ET.Element | None:
    for disk in parse(dom.XMLDesc(0)).iterfind("devices/disk"):
        source = disk.find("source")
        if source is not None and source.get("file") == path:
            return disk
    return None


def _nic_of(dom: libvirt.virDomain, mac: str) -> ET.Element | None:
    for interface in parse(dom.XMLDesc(0)).iterfind("devices/interface"):
        address = interface.find("mac")
        if address is not None and address.get("address", "").lower() == mac.lower():
            return interface
    return None


_FINDERS = {"disk": _disk_of, "nic": _nic_of}


def _detach(conn: libvirt.virConnect, vm_uuid: str, kind: str, key: str) -> bool:
    """Ask QEMU to unplug the VM's disk (by file) or NIC (by MAC); False when it is not
    attached (any more), so a retried detach succeeds. By alias when the running domain
    has one: libvirt then returns at once and the agent does the waiting (detachDeviceFlags
    waits 5 s itself, then answers success whether or not the device went)."""
    dom = _require(conn, vm_uuid)
    device = _FINDERS[kind](dom, key)
    if device is None:
        return False
    alias = device.find("alias")
    if alias is not None and alias.get("name"):
        dom.detachDeviceAlias(alias.get("name"), _LIVE)
    else:
        dom.detachDeviceFlags(device_text(device), _LIVE)
    return True


def _attached(conn: libvirt.virConnect, vm_uuid: str, kind: str, key: str) -> bool:
    dom = _domain(conn, vm_uuid)
    return dom is not None and dom.isActive() and _FINDERS[kind](dom, key) is not None


def _snapshot(
    conn: libvirt.virConnect, vm_uuid: str | None, current: str, new_top: str, target: str
) -> int:
    """Make ``new_top`` the volume's writable top over ``current``; the size of the
    snapshot (``current``). Running VM: a live external snapshot; else a new qcow2 file."""
    size = volume_size(conn, current)
    dom = _domain(conn, vm_uuid) if vm_uuid else None
    if dom is not None and dom.isActive():
        flags = (
            libvirt.VIR_DOMAIN_SNAPSHOT_CREATE_DISK_ONLY
            | libvirt.VIR_DOMAIN_SNAPSHOT_CREATE_NO_METADATA
            | libvirt.VIR_DOMAIN_SNAPSHOT_CREATE_ATOMIC
        )
        dom.snapshotCreateXML(snapshot_xml(target, new_top), flags)
    else:
        create_volume(conn, new_top, size, backing=current)
    return size


class VmCommands:
    def __init__(self, runtime: AgentRuntime, hv: Hypervisor, config: AgentConfig) -> None:
        self.runtime, self.hv, self.config = runtime, hv, config
        self._guest: GuestSupport | None = None

    def register(self) -> None:
        rt = self.runtime
        rt.command("/vm/start", self.start)
        rt.command("/vm/stop", self.stop)
        rt.command("/vm/reboot", self.reboot)
        rt.command("/vm/destroy", self.destroy)
        rt.command("/vm/pause", self.pause)
        rt.command("/vm/resume", self.resume)
        rt.command("/vm/vmsync", self.vmsync)
        rt.command("/vm/checkstate", self.check_state)
        rt.command("/vm/migrate", self.migrate)
        rt.command("/vm/attachdatavolume", self.attach_volume)
        rt.command("/vm/detachdatavolume", self.detach_volume)
        rt.command("/vm/detachnic", self.detach_nic)
        rt.command("/vm/volume/takesnapshot", self.take_snapshot)

    async def _guest_support(self) -> GuestSupport:
        if self._guest is None:
            caps = await self.hv.call("read the host's capabilities", _capabilities)
            self._guest = guest_support(caps, self.config.domain_type)
            await asyncio.to_thread(self.config.console_dir.mkdir, parents=True, exist_ok=True)
        return self._guest

    async def start(self, cmd: dict[str, Any]) -> dict[str, Any]:
        vm_uuid = need_str(cmd, "vmInstanceUuid")
        guest = await self._guest_support()
        xml = domain_xml(
            cmd,
            domain_type=guest.domain_type,
            arch=guest.arch,
            emulator=guest.emulator,
            console_log=str(self.config.console_dir / f"{vm_uuid}.log"),
        )
        await self.hv.call(f"start vm {vm_uuid}", _start, vm_uuid, xml)
        return {}

    async def stop(self, cmd: dict[str, Any]) -> dict[str, Any]:
        vm_uuid = need_str(cmd, "uuid")
        if cmd.get("type") == "grace":
            # A graceful stop asks the guest first; after the timeout it is forced.
            timeout = cmd.get("timeout")
            limit = float(timeout) if isinstance(timeout, int) and timeout > 0 else 60.0
            if await self.hv.call(f"shut down vm {vm_uuid}", _shutdown, vm_uuid):
                loop = asyncio.get_running_loop()
                deadline = loop.time() + limit
                while loop.time() < deadline:
                    if await self.hv.call(f"read vm {vm_uuid}", _state, vm_uuid) == SHUTDOWN:
                        break
                    await asyncio.sleep(_SHUTDOWN_POLL_S)
        await self.hv.call(f"stop vm {vm_uuid}", _destroy, vm_uuid)
        return {}

    async def destroy(self, cmd: dict[str, Any]) -> dict[str, Any]:
        vm_uuid = need_str(cmd, "uuid")
        await self.hv.call(f"destroy vm {vm_uuid}", _destroy, vm_uuid)
        return {}

    async def reboot(self, cmd: dict[str, Any]) -> dict[str, Any]:
        vm_uuid = need_str(cmd, "uuid")
        await self.hv.call(f"reboot vm {vm_uuid}", _reboot, vm_uuid)
        return {}

    async def pause(self, cmd: dict[str, Any]) -> dict[str, Any]:
        vm_uuid = need_str(cmd, "uuid")
        await self.hv.call(f"pause vm {vm_uuid}", _pause, vm_uuid)
        return {}

    async def resume(self, cmd: dict[str, Any]) -> dict[str, Any]:
        vm_uuid = need_str(cmd, "uuid")
        await self.hv.call(f"resume vm {vm_uuid}", _resume, vm_uuid)
        return {}

    async def vmsync(self, cmd: dict[str, Any]) -> dict[str, Any]:
        states = await self.hv.call("list the host's VMs", all_vm_states)
        return {"states": states, "vmInShutdowns": []}

    async def check_state(self, cmd: dict[str, Any]) -> dict[str, Any]:
        uuids = cmd.get("vmUuids") or []
        if not isinstance(uuids, list) or not all(isinstance(u, str) for u in uuids):
            raise AgentCommandError("vmUuids must be a list of VM uuids")
        states = {}
        for vm_uuid in uuids:
            states[vm_uuid] = await self.hv.call(f"read vm {vm_uuid}", _state, vm_uuid)
        return {"states": states}

    async def migrate(self, cmd: dict[str, Any]) -> dict[str, Any]:
        vm_uuid = need_str(cmd, "vmUuid")
        dest = cmd.get("destHostManagementIp") or cmd.get("destHostIp")
        if not isinstance(dest, str) or not dest:
            raise AgentCommandError("the command needs destHostManagementIp")
        dest_uri = self.config.migrate_uri.format(host=dest)
        await self.hv.call(f"migrate vm {vm_uuid} to {dest}", _migrate, vm_uuid, dest_uri)
        return {}

    async def attach_volume(self, cmd: dict[str, Any]) -> dict[str, Any]:
        vm_uuid = need_str(cmd, "vmInstanceUuid")
        volume = _volume(cmd)
        xml = device_text(disk_xml(volume))
        await self.hv.call(f"attach a volume to vm {vm_uuid}", _attach, vm_uuid, xml)
        return {}

    async def detach_volume(self, cmd: dict[str, Any]) -> dict[str, Any]:
        vm_uuid = need_str(cmd, "vmInstanceUuid")
        path = need_str(_volume(cmd), "installPath")
        await self._detach(vm_uuid, "disk", path)
        return {}

    async def detach_nic(self, cmd: dict[str, Any]) -> dict[str, Any]:
        vm_uuid = need_str(cmd, "vmUuid")
        nic = cmd.get("nic")
        if not isinstance(nic, dict):
            raise AgentCommandError("the command needs a nic object")
        mac = need_str(nic, "mac")
        await self._detach(vm_uuid, "nic", mac)
        return {}

    async def _detach(self, vm_uuid: str, kind: str, key: str) -> None:
        """Unplug and wait until the device is gone from the running domain. libvirt may
        answer success while the device is still there: unplugging a PCI device needs the
        guest to acknowledge it (ACPI hot-unplug), so success is what the domain shows."""
        doing = f"detach {kind} {key} from vm {vm_uuid}"
        if not await self.hv.call(doing, _detach, vm_uuid, kind, key):
            return
        loop = asyncio.get_running_loop()
        limit = self.config.unplug_timeout
        deadline = loop.time() + limit
        while await self.hv.call(doing, _attached, vm_uuid, kind, key):
            if loop.time() >= deadline:
                raise AgentCommandError(
                    f"vm {vm_uuid} did not release {kind} {key}: its guest did not "
                    f"acknowledge the unplug within {limit} s",
                    vmUuid=vm_uuid,
                    device=kind,
                    key=key,
                    unplugTimeout=limit,
                )
            await asyncio.sleep(_RELEASE_POLL_S)

    async def take_snapshot(self, cmd: dict[str, Any]) -> dict[str, Any]:
        current = cmd.get("volumeInstallPath") or cmd.get("installPath")
        if not isinstance(current, str) or not current:
            raise AgentCommandError("the command needs volumeInstallPath")
        new_top = cmd.get("newVolumeInstallPath")
        if not isinstance(new_top, str) or not new_top or new_top == current:
            new_top = f"{posixpath.dirname(current)}/{os.urandom(16).hex()}.qcow2"
        vm_uuid = cmd.get("vmUuid") if isinstance(cmd.get("vmUuid"), str) else None
        volume = cmd.get("volume") if isinstance(cmd.get("volume"), dict) else {}
        device_id = volume.get("deviceId", 0) if isinstance(volume, dict) else 0
        target = disk_target(device_id if isinstance(device_id, int) else 0)
        size = await self.hv.call(
            f"snapshot volume {current}", _snapshot, vm_uuid, current, new_top, target
        )
        return {"newVolumeInstallPath": new_top, "snapshotInstallPath": current, "size": size}


def _volume(cmd: dict[str, Any]) -> dict[str, Any]:
    volume = cmd.get("volume")
    if not isinstance(volume, dict):
        raise AgentCommandError("the command needs a volume object")
    return volume


def _capabilities(conn: libvirt.virConnect) -> str:
    return str(conn.getCapabilities())
