"""A real guest boots through the KVM agent on libvirt's QEMU driver (``qemu:///system``).

The node adds the host through the playbook and drives the agent process over HTTP with
callbacks, as in test_kvm_agent.py, but the agent's libvirt runs QEMU: with KVM where
libvirt offers it, else full emulation (TCG). The guest is a boot sector the test builds
(tests/support/boot_sector.py): it prints a line on its serial port, which must show up
in the console log the agent has libvirt keep; it is paused and resumed (libvirt's events
reach the node); and it acknowledges PCI hot-unplug, so a data volume is attached to and
detached from the running guest for real. A live snapshot of the running root volume
leaves a new qcow2 top over the old file.

Needs QEMU and libvirtd (``.ci/bootstrap test`` installs and starts them). Under CI=true
(or ZSTACK_TEST_REAL=1) it fails when ``qemu:///system`` does not answer; elsewhere it is
skipped with the reason. No image is downloaded and the guest has no network.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from pydantic import SecretStr

from tests.e2e.conftest import ADMIN_PASSWORD, Start, login_admin
from tests.support.boot_sector import BOOT_LINE, boot_sector
from tests.support.datacenter import add_cluster, add_zone
from tests.support.kvm_agent import InProcessAgent, KvmAgentProcess, prefix_paths, random_loopback
from tests.support.real_host import States, add_real_host, deploy_vars, host_call, volume
from tests.support.real_server import real_servers_required
from zstackpy.node.node import ManagementNode
from zstackpy.services.host.messages import VmStateChangedOnHostEvent
from zstackpy.services.vm.extensions import (
    VmHost,
    VmOnHost,
    VmStartSpec,
    VmStopRequest,
    VmVolumeRequest,
)
from zstackpy.services.vm.records import backend_for

pytestmark = pytest.mark.timeout(180)

URI = "qemu:///system"


def _libvirt_qemu() -> tuple[str | None, set[str]]:
    """(why QEMU cannot be used here or None, the domain types libvirt offers for the
    host's architecture)."""
    import libvirt

    try:
        conn = libvirt.open(URI)
    except libvirt.libvirtError as exc:
        return f"{URI} does not answer: {exc.get_error_message()}", set()
    try:
        caps = conn.getCapabilities()
    finally:
        conn.close()
    import xml.etree.ElementTree as ET

    root = ET.fromstring(caps)
    host_arch = root.findtext("host/cpu/arch")
    types = {
        d.get("type", "")
        for g in root.iterfind("guest")
        if g.findtext("os_type") == "hvm"
        for d in g.iterfind(f"arch[@name='{host_arch}']/domain")
    }
    if not types:
        return f"{URI} lists no QEMU for {host_arch}", types
    return None, types


@pytest.fixture
async def qemu_types() -> set[str]:
    """The domain types libvirt's QEMU driver offers; fails under CI, skips elsewhere,
    when there is none."""
    error, types = await asyncio.to_thread(_libvirt_qemu)
    if error is not None:
        if real_servers_required():
            pytest.fail(f"{error} (the QEMU boot test must run when CI=true)")
        pytest.skip(error)
    return types


@pytest.fixture
def storage() -> Iterator[Path]:
    """Local primary storage QEMU can read: libvirt runs it as ``libvirt-qemu``, which
    cannot enter pytest's 0700 temporary directories. Not tmpfs either: disks are opened
    with O_DIRECT (cache mode none). The agent's libvirt pools under it are removed after."""
    root = Path(tempfile.mkdtemp(prefix="zstackpy-qemu-", dir="/var/tmp"))
    root.chmod(0o755)
    yield root
    _undefine_pools_under(str(root))
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
async def qemu_agent(qemu_types: set[str], tmp_path: Path) -> AsyncIterator[KvmAgentProcess]:
    process = KvmAgentProcess(random_loopback(), tmp_path / "host", tmp_path / "agent.log", URI)
    await process.start()
    yield process
    await process.stop()


@pytest.fixture
async def real_node(start_node: Start, qemu_agent: KvmAgentProcess) -> ManagementNode:
    return await start_node(
        admin_password=SecretStr(ADMIN_PASSWORD),
        simulator=False,
        deploy_extra_vars=deploy_vars(qemu_agent.prefix),
    )


def _undefine_pools_under(root: str) -> None:
    import libvirt

    conn = libvirt.open(URI)
    try:
        for pool in conn.listAllStoragePools(0):
            if f"<path>{root}" in pool.XMLDesc(0):
                if pool.isActive():
                    pool.destroy()
                pool.undefine()
    finally:
        conn.close()


def _live_domain(vm_uuid: str) -> str | None:
    """The running domain's XML as libvirt has it now, or None."""
    import libvirt

    conn = libvirt.open(URI)
    try:
        dom = conn.lookupByName(vm_uuid)
        return str(dom.XMLDesc(0)) if dom.isActive() else None
    except libvirt.libvirtError:
        return None
    finally:
        conn.close()


def _destroy_leftover(vm_uuid: str) -> None:
    """A failed test must not leave a QEMU running."""
    import libvirt

    conn = libvirt.open(URI)
    try:
        dom = conn.lookupByName(vm_uuid)
        if dom.isActive():
            dom.destroy()
        dom.undefine()
    except libvirt.libvirtError:
        pass
    finally:
        conn.close()


def _write_boot_sector(disk: Path, *, ack_unplug: bool = True) -> None:
    sector = disk.parent / "boot.sector"
    sector.write_bytes(boot_sector(ack_unplug=ack_unplug))
    subprocess.run(
        ["qemu-io", "-f", "qcow2", "-c", f"write -s {sector} 0 512", str(disk)],
        check=True,
        capture_output=True,
    )


async def _console_shows(log: Path, timeout: float = 90) -> bytes:
    """The console log once it holds the guest's line. TCG gets there in well under a
    second; nested KVM (this suite's VMs) takes its firmware some 15 s."""
    async with asyncio.timeout(timeout):
        while True:
            text = await asyncio.to_thread(lambda: log.read_bytes() if log.exists() else b"")
            if BOOT_LINE in text:
                return text
            await asyncio.sleep(0.1)


def _qemu_img_info(path: str) -> dict[str, Any]:
    done = subprocess.run(
        ["qemu-img", "info", "-U", "--output=json", path],
        check=True,
        capture_output=True,
        text=True,
    )
    info: dict[str, Any] = json.loads(done.stdout)
    return info


def _disk_sources(domain_xml: str) -> dict[str, str]:
    """target dev -> source file of the domain's disks."""
    import xml.etree.ElementTree as ET

    dom = ET.fromstring(domain_xml)
    sources = {}
    for disk in dom.iterfind("devices/disk"):
        target, source = disk.find("target"), disk.find("source")
        if target is not None and source is not None:
            sources[target.get("dev", "")] = source.get("file", "")
    return sources


async def test_a_real_guest_boots_and_takes_disks_and_a_live_snapshot(
    real_node: ManagementNode,
    qemu_agent: KvmAgentProcess,
    qemu_types: set[str],
    storage: Path,
    http: aiohttp.ClientSession,
) -> None:
    node = real_node
    admin = await login_admin(node, http)
    zone = await add_zone(admin, "qemu-zone")
    cluster = await add_cluster(admin, zone["uuid"], "qemu-cluster")
    added = await add_real_host(admin, qemu_agent.address, cluster["uuid"])
    assert added.status == 200, added.body
    host = added.body["inventory"]
    assert host["status"] == "Connected"
    states = States()
    await node.context.bus.subscribe(VmStateChangedOnHostEvent, states.on_event)
    kvm = backend_for(node.context, "KVM")
    on = VmHost(host["uuid"], qemu_agent.address, "KVM")

    async def call(agent_path: str, /, **cmd: Any) -> dict[str, Any]:
        return await host_call(node, host["uuid"], agent_path, **cmd)

    vm_uuid = uuid.uuid4().hex
    await call("/localstorage/init", path=str(storage))
    folder = storage / "rootVolumes" / vm_uuid
    root_path, data_path = str(folder / "root.qcow2"), str(folder / "data.qcow2")
    await call("/localstorage/volume/createempty", installUrl=root_path, size=1 << 20)
    await call("/localstorage/volume/createempty", installUrl=data_path, size=16 << 20)
    await asyncio.to_thread(_write_boot_sector, Path(root_path))

    _, state_dir = prefix_paths(qemu_agent.prefix)
    console = state_dir / "console" / f"{vm_uuid}.log"
    try:
        await kvm.start_vm(
            VmStartSpec(
                vm_uuid=vm_uuid,
                name="boot-sector",
                internal_id=1,
                host=on,
                cpu_num=1,
                cpu_speed=0,
                memory_size=32 << 20,
                platform="Other",
                architecture="x86_64",
                root_volume=volume(uuid.uuid4().hex, root_path, 0),
                data_volumes=(),
                nics=(),
            )
        )
        await states.wait_for(vm_uuid, "Running")
        assert (await kvm.list_vm_states(on)).states == {vm_uuid: "Running"}
        # The guest ran: its serial output is in the console log libvirt keeps.
        assert BOOT_LINE + b"\r\n" in await _console_shows(console)
        live = await asyncio.to_thread(_live_domain, vm_uuid)
        assert live is not None
        # KVM when libvirt offers it on this host, else full emulation.
        expected_type = "kvm" if "kvm" in qemu_types else "qemu"
        assert f"<domain type='{expected_type}'" in live
        assert _disk_sources(live) == {"vda": root_path}
        # QEMU stops and continues the vCPUs; libvirt's events reach the node.
        await kvm.pause_vm(VmOnHost(vm_uuid, on))
        await states.wait_for(vm_uuid, "Paused")
        await kvm.resume_vm(VmOnHost(vm_uuid, on))
        await states.wait_for(vm_uuid, "Running")

        # A data volume plugged into the running guest, then unplugged (the guest ejects it).
        data = volume(uuid.uuid4().hex, data_path, 1, "Data")
        await kvm.attach_volume(VmVolumeRequest(vm_uuid, on, data))
        live = await asyncio.to_thread(_live_domain, vm_uuid)
        assert live is not None
        assert _disk_sources(live) == {"vda": root_path, "vdb": data_path}
        await kvm.detach_volume(VmVolumeRequest(vm_uuid, on, data))
        live = await asyncio.to_thread(_live_domain, vm_uuid)
        assert live is not None
        assert _disk_sources(live) == {"vda": root_path}

        # A live snapshot: the running guest now writes to a new qcow2 over the old file.
        top = str(folder / "top.qcow2")
        snap = await call(
            "/vm/volume/takesnapshot",
            vmUuid=vm_uuid,
            volumeInstallPath=root_path,
            newVolumeInstallPath=top,
            volume={"deviceId": 0},
        )
        assert snap["snapshotInstallPath"] == root_path
        assert snap["newVolumeInstallPath"] == top
        assert snap["size"] == 1 << 20
        info = await asyncio.to_thread(_qemu_img_info, top)
        assert info["format"] == "qcow2"
        assert info["backing-filename"] == root_path
        assert info["virtual-size"] == 1 << 20
        live = await asyncio.to_thread(_live_domain, vm_uuid)
        assert live is not None
        assert _disk_sources(live) == {"vda": top}

        await kvm.stop_vm(VmStopRequest(vm_uuid, on, type="cold", timeout=30))
        await states.wait_for(vm_uuid, "Stopped")
        assert (await kvm.list_vm_states(on)).states == {}
        assert await asyncio.to_thread(_live_domain, vm_uuid) is None
        await kvm.destroy_vm(VmOnHost(vm_uuid, on))
    finally:
        await asyncio.to_thread(_destroy_leftover, vm_uuid)

    # The files the live snapshot made are the storage's like any other.
    for path in (top, root_path, data_path):
        await call("/localstorage/delete", path=path)
        assert not os.path.exists(path), path


async def test_full_emulation_boots_and_a_guest_that_keeps_a_disk_fails_the_detach(
    qemu_types: set[str], storage: Path, tmp_path: Path
) -> None:
    """``domain_type = "qemu"`` forces QEMU's TCG even on a host with KVM (the setting an
    operator uses where KVM is unusable); the guest boots all the same. This guest ignores
    hot-unplug: the detach fails with the reason and the disk stays where it was."""
    settings = {"libvirt_uri": URI, "domain_type": "qemu", "unplug_timeout": 1}
    async with InProcessAgent(tmp_path, **settings) as agent:
        vm_uuid = uuid.uuid4().hex
        root, data = storage / "root.qcow2", storage / "data.qcow2"
        await agent.call("/localstorage/init", {"path": str(storage)})
        for path, size in ((root, 1 << 20), (data, 16 << 20)):
            made = await agent.call(
                "/localstorage/volume/createempty", {"installUrl": str(path), "size": size}
            )
            assert made["success"], made
        await asyncio.to_thread(_write_boot_sector, root, ack_unplug=False)
        start = {
            "vmInstanceUuid": vm_uuid,
            "memory": 32 << 20,
            "cpuNum": 1,
            "rootVolume": {"installPath": str(root), "deviceId": 0, "format": "qcow2"},
        }
        data_volume = {"installPath": str(data), "deviceId": 1, "format": "qcow2"}
        try:
            started = await agent.call("/vm/start", start)
            assert started["success"], started
            console = agent.config.console_dir / f"{vm_uuid}.log"
            assert BOOT_LINE in await _console_shows(console)
            live = await asyncio.to_thread(_live_domain, vm_uuid)
            assert live is not None
            assert "<domain type='qemu'" in live

            volume_cmd = {"vmInstanceUuid": vm_uuid, "volume": data_volume}
            attached = await agent.call("/vm/attachdatavolume", volume_cmd)
            assert attached["success"], attached
            kept = await agent.call("/vm/detachdatavolume", volume_cmd)
            assert kept["success"] is False
            assert "did not acknowledge the unplug within 1 s" in kept["error"]
            assert kept["details"] == {
                "vmUuid": vm_uuid,
                "device": "disk",
                "key": str(data),
                "unplugTimeout": 1,
            }
            live = await asyncio.to_thread(_live_domain, vm_uuid)
            assert live is not None
            assert _disk_sources(live) == {"vda": str(root), "vdb": str(data)}

            destroyed = await agent.call("/vm/destroy", {"uuid": vm_uuid})
            assert destroyed["success"], destroyed
            assert await asyncio.to_thread(_live_domain, vm_uuid) is None
        finally:
            await asyncio.to_thread(_destroy_leftover, vm_uuid)
