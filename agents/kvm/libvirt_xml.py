"""libvirt XML built from the node's commands (ZStack's ``KVMAgentCommands`` fields).

Pure functions of the command: no libvirt call here, so each shape is unit-tested. Values
from the command are escaped by ElementTree; nothing is formatted into XML by hand.
"""

from __future__ import annotations

import uuid
import xml.etree.ElementTree as ET
from typing import Any

from agents.runtime import AgentCommandError

MIB = 1024 * 1024


def _sub(parent: ET.Element, tag: str, text: str | None = None, /, **attrs: str) -> ET.Element:
    element = ET.SubElement(parent, tag, attrs)
    if text is not None:
        element.text = text
    return element


def _text(element: ET.Element) -> str:
    return ET.tostring(element, encoding="unicode")


def need_str(cmd: dict[str, Any], name: str) -> str:
    value = cmd.get(name)
    if not isinstance(value, str) or not value:
        raise AgentCommandError(f"the command needs a non-empty string {name!r}")
    return value


def need_int(cmd: dict[str, Any], name: str) -> int:
    value = cmd.get(name)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise AgentCommandError(f"the command needs a non-negative integer {name!r}")
    return value


def libvirt_uuid(vm_uuid: str) -> str:
    """ZStack's 32-hex VM uuid in libvirt's dashed form (the domain's <uuid>)."""
    try:
        return str(uuid.UUID(hex=vm_uuid))
    except ValueError:
        raise AgentCommandError(f"{vm_uuid!r} is not a VM uuid (32 hex digits)") from None


def disk_target(device_id: int) -> str:
    """vda for device 0, vdb for 1, ... (virtio block names)."""
    if not 0 <= device_id < 26:
        raise AgentCommandError(f"deviceId {device_id} is outside 0..25")
    return "vd" + chr(ord("a") + device_id)


def disk_xml(volume: dict[str, Any]) -> ET.Element:
    """A ``<disk>`` for a VolumeTO (installPath, deviceId, format, cacheMode, useVirtio)."""
    path = need_str(volume, "installPath")
    device_id = volume.get("deviceId", 0)
    if isinstance(device_id, bool) or not isinstance(device_id, int):
        raise AgentCommandError("a volume's deviceId must be an integer")
    disk = ET.Element("disk", type="file", device="disk")
    fmt = volume.get("format") if volume.get("format") in ("qcow2", "raw") else "qcow2"
    cache = str(volume.get("cacheMode") or "none")
    _sub(disk, "driver", name="qemu", type=str(fmt), cache=cache)
    _sub(disk, "source", file=path)
    virtio = volume.get("useVirtio", True) is not False
    _sub(disk, "target", dev=disk_target(device_id), bus="virtio" if virtio else "ide")
    if isinstance(volume.get("volumeUuid"), str):
        _sub(disk, "serial", volume["volumeUuid"][:20])
    return disk


def nic_xml(nic: dict[str, Any]) -> ET.Element:
    """An ``<interface type='bridge'>`` for a NicTO (mac, bridgeName, nicInternalName)."""
    interface = ET.Element("interface", type="bridge")
    _sub(interface, "mac", address=need_str(nic, "mac"))
    _sub(interface, "source", bridge=need_str(nic, "bridgeName"))
    internal = nic.get("nicInternalName")
    if isinstance(internal, str) and internal:
        _sub(interface, "target", dev=internal)
    model = "virtio" if nic.get("useVirtio", True) is not False else "e1000"
    _sub(interface, "model", type=model)
    mtu = nic.get("mtu")
    if isinstance(mtu, int) and not isinstance(mtu, bool) and mtu > 0:
        _sub(interface, "mtu", size=str(mtu))
    return interface


def domain_xml(
    cmd: dict[str, Any],
    *,
    domain_type: str,
    arch: str,
    emulator: str | None = None,
    console_log: str | None = None,
) -> str:
    """The domain of a ``/vm/start`` command. Named by the VM uuid, so every later command
    (and ``/vm/vmsync``) finds it by name. ``domain_type`` (``kvm``, ``qemu``: full
    emulation, ``test``), ``arch`` and ``emulator`` are the host's (``capabilities.py``).
    The guest's first serial port is a pty (``virsh console``) whose output is also
    written to ``console_log`` when given."""
    vm_uuid = need_str(cmd, "vmInstanceUuid")
    memory = need_int(cmd, "memory")
    cpu_num = need_int(cmd, "cpuNum")
    if cpu_num < 1 or memory < MIB:
        raise AgentCommandError("a VM needs at least 1 vCPU and 1 MiB of memory")
    root = cmd.get("rootVolume")
    if not isinstance(root, dict):
        raise AgentCommandError("the command needs a rootVolume object")
    data_volumes = cmd.get("dataVolumes") or []
    nics = cmd.get("nics") or []
    if not isinstance(data_volumes, list) or not all(isinstance(v, dict) for v in data_volumes):
        raise AgentCommandError("dataVolumes must be a list of volume objects")
    if not isinstance(nics, list) or not all(isinstance(n, dict) for n in nics):
        raise AgentCommandError("nics must be a list of NIC objects")

    domain = ET.Element("domain", type=domain_type)
    _sub(domain, "name", vm_uuid)
    _sub(domain, "uuid", libvirt_uuid(vm_uuid))
    name = cmd.get("vmName")
    if isinstance(name, str) and name:
        _sub(domain, "title", name[:255])
    _sub(domain, "memory", str(memory // 1024), unit="KiB")
    _sub(domain, "currentMemory", str(memory // 1024), unit="KiB")
    _sub(domain, "vcpu", str(cpu_num), placement="static")
    os_element = _sub(domain, "os")
    _sub(os_element, "type", "hvm", arch=arch)
    boot = [d for d in cmd.get("bootDev") or ["hd"] if d in ("hd", "cdrom", "network")]
    for dev in boot or ["hd"]:
        _sub(os_element, "boot", dev=dev)
    features = _sub(domain, "features")
    _sub(features, "acpi")
    _sub(domain, "on_poweroff", "destroy")
    _sub(domain, "on_reboot", "restart")
    _sub(domain, "on_crash", "restart")
    devices = _sub(domain, "devices")
    if emulator:
        _sub(devices, "emulator", emulator)
    devices.append(disk_xml({**root, "deviceId": root.get("deviceId", 0)}))
    for volume in data_volumes:
        devices.append(disk_xml(volume))
    for nic in sorted(nics, key=lambda n: n.get("deviceId", 0)):
        devices.append(nic_xml(nic))
    serial = _sub(devices, "serial", type="pty")
    if console_log:
        # Written by libvirt (virtlogd, which also rotates it), fresh at each start.
        _sub(serial, "log", file=console_log, append="off")
    _sub(devices, "console", type="pty")
    return _text(domain)


def device_text(element: ET.Element) -> str:
    return _text(element)


def parse(text: str) -> ET.Element:
    """XML that libvirt gave us (capabilities, a domain's definition)."""
    # libvirt's own output on this host, not input from the network.
    return ET.fromstring(text)  # noqa: S314


def dir_pool_xml(name: str, path: str) -> str:
    pool = ET.Element("pool", type="dir")
    _sub(pool, "name", name)
    target = _sub(pool, "target")
    _sub(target, "path", path)
    return _text(pool)


def nfs_pool_xml(name: str, url: str, mount_path: str) -> str:
    """A netfs pool for ``url`` (``server:/export``) mounted at ``mount_path``."""
    server, sep, export = url.partition(":")
    if not sep or not server or not export.startswith("/"):
        raise AgentCommandError(f"NFS url {url!r} is not server:/export")
    pool = ET.Element("pool", type="netfs")
    _sub(pool, "name", name)
    source = _sub(pool, "source")
    _sub(source, "host", name=server)
    _sub(source, "dir", path=export)
    _sub(source, "format", type="nfs")
    target = _sub(pool, "target")
    _sub(target, "path", mount_path)
    return _text(pool)


def volume_xml(name: str, size: int, backing: str | None = None) -> str:
    """A qcow2 volume of ``size`` bytes, thin over ``backing`` when given."""
    volume = ET.Element("volume")
    _sub(volume, "name", name)
    _sub(volume, "capacity", str(size), unit="bytes")
    target = _sub(volume, "target")
    _sub(target, "format", type="qcow2")
    if backing is not None:
        store = _sub(volume, "backingStore")
        _sub(store, "path", backing)
        _sub(store, "format", type="qcow2")
    return _text(volume)


def bridge_xml(bridge: str, interface: str, vlan: int | None) -> str:
    """A host bridge over ``interface`` (NoVlan), or over its VLAN ``interface.<vlan>``."""
    root = ET.Element("interface", type="bridge", name=bridge)
    _sub(root, "start", mode="onboot")
    inner = _sub(root, "bridge", stp="off")
    if vlan is None:
        _sub(inner, "interface", type="ethernet", name=interface)
    else:
        port = _sub(inner, "interface", type="vlan", name=f"{interface}.{vlan}")
        tag = _sub(port, "vlan", tag=str(vlan))
        _sub(tag, "interface", name=interface)
    return _text(root)


def snapshot_xml(disk_target_dev: str, new_top: str) -> str:
    """An external, disk-only snapshot of one disk of a running domain: ``new_top`` takes
    the writes from now on and the current file becomes the snapshot."""
    snapshot = ET.Element("domainsnapshot")
    disks = _sub(snapshot, "disks")
    disk = _sub(disks, "disk", name=disk_target_dev, snapshot="external")
    _sub(disk, "source", file=new_top)
    return _text(snapshot)
