"""The libvirt XML the KVM agent builds from the node's commands (agents/kvm/libvirt_xml.py)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

import pytest

from agents.kvm.libvirt_xml import bridge_xml, domain_xml, nfs_pool_xml, volume_xml
from agents.runtime import AgentCommandError

VM = "0123456789abcdef0123456789abcdef"


def start_cmd(**changes: Any) -> dict[str, Any]:
    cmd: dict[str, Any] = {
        "vmInstanceUuid": VM,
        "vmName": "web <1>",
        "memory": 1 << 30,
        "cpuNum": 2,
        "bootDev": ["hd"],
        "rootVolume": {"installPath": "/ps/root.qcow2", "deviceId": 0, "format": "qcow2"},
        "dataVolumes": [{"installPath": "/ps/data.qcow2", "deviceId": 1, "format": "raw"}],
        "nics": [
            {"mac": "fa:16:3e:00:00:02", "bridgeName": "br_eth0_10", "deviceId": 1},
            {
                "mac": "fa:16:3e:00:00:01",
                "bridgeName": "br_eth0",
                "deviceId": 0,
                "nicInternalName": "vnic1.0",
                "useVirtio": False,
            },
        ],
    }
    cmd.update(changes)
    return cmd


def test_a_domain_is_named_by_the_vm_uuid_with_its_disks_and_nics_in_device_order() -> None:
    dom = ET.fromstring(domain_xml(start_cmd(), domain_type="kvm", arch="x86_64"))
    assert dom.get("type") == "kvm"
    assert dom.findtext("name") == VM
    assert dom.findtext("uuid") == "01234567-89ab-cdef-0123-456789abcdef"
    assert dom.findtext("title") == "web <1>"  # escaped by ElementTree, read back whole
    assert dom.findtext("memory") == str(1 << 20)  # KiB
    assert dom.findtext("vcpu") == "2"
    disks = dom.findall("devices/disk")
    assert [d.find("target").get("dev") for d in disks] == ["vda", "vdb"]  # type: ignore[union-attr]
    assert [d.find("driver").get("type") for d in disks] == ["qcow2", "raw"]  # type: ignore[union-attr]
    nics = dom.findall("devices/interface")
    assert [n.find("source").get("bridge") for n in nics] == ["br_eth0", "br_eth0_10"]  # type: ignore[union-attr]
    assert nics[0].find("model").get("type") == "e1000"  # type: ignore[union-attr]
    assert nics[0].find("target").get("dev") == "vnic1.0"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"vmInstanceUuid": "not-a-uuid"}, "is not a VM uuid"),
        ({"cpuNum": 0}, "at least 1 vCPU"),
        ({"memory": -1}, "non-negative integer 'memory'"),
        ({"rootVolume": None}, "rootVolume"),
        ({"nics": [{"mac": "fa:16:3e:00:00:01"}]}, "bridgeName"),
        ({"dataVolumes": [{"installPath": "/ps/x", "deviceId": 26}]}, "outside 0..25"),
    ],
)
def test_bad_start_commands_are_refused_with_the_reason(
    changes: dict[str, Any], message: str
) -> None:
    with pytest.raises(AgentCommandError, match=message):
        domain_xml(start_cmd(**changes), domain_type="kvm", arch="x86_64")


def test_vlan_bridges_sit_on_the_vlan_interface() -> None:
    plain = ET.fromstring(bridge_xml("br_eth0", "eth0", None))
    assert plain.find("bridge/interface").get("name") == "eth0"  # type: ignore[union-attr]
    vlan = ET.fromstring(bridge_xml("br_eth0_10", "eth0", 10))
    port = vlan.find("bridge/interface")
    assert port is not None
    assert port.get("type") == "vlan"
    assert port.get("name") == "eth0.10"
    assert port.find("vlan").get("tag") == "10"  # type: ignore[union-attr]


def test_storage_xml() -> None:
    pool = ET.fromstring(nfs_pool_xml("zs-nfs-x", "nfs.example:/export", "/mnt/x"))
    assert pool.find("source/host").get("name") == "nfs.example"  # type: ignore[union-attr]
    assert pool.findtext("target/path") == "/mnt/x"
    with pytest.raises(AgentCommandError, match="server:/export"):
        nfs_pool_xml("p", "just-a-name", "/mnt/x")
    vol = ET.fromstring(volume_xml("top.qcow2", 10, backing="/ps/base.qcow2"))
    assert vol.findtext("backingStore/path") == "/ps/base.qcow2"
    assert vol.findtext("capacity") == "10"


def test_the_domain_names_the_emulator_and_keeps_the_serial_console_in_a_log() -> None:
    xml = domain_xml(
        start_cmd(),
        domain_type="qemu",
        arch="x86_64",
        emulator="/usr/bin/qemu-system-x86_64",
        console_log=f"/var/lib/zstackpy/kvm-agent/console/{VM}.log",
    )
    dom = ET.fromstring(xml)
    assert dom.get("type") == "qemu"
    assert dom.findtext("devices/emulator") == "/usr/bin/qemu-system-x86_64"
    serial = dom.find("devices/serial")
    assert serial is not None
    assert serial.get("type") == "pty"
    log = serial.find("log")
    assert log is not None
    assert log.attrib == {"file": f"/var/lib/zstackpy/kvm-agent/console/{VM}.log", "append": "off"}
    # Without them: libvirt's default emulator, a console with no log.
    bare = ET.fromstring(domain_xml(start_cmd(), domain_type="kvm", arch="x86_64"))
    assert bare.find("devices/emulator") is None
    assert bare.find("devices/serial/log") is None
