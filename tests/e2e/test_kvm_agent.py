"""The node drives the real KVM agent (``agents/kvm``) over HTTP with callbacks.

No simulator here: the node runs with real hosts (the ``ansible`` agent driver).
AddKVMHost runs ``ansible/kvm-agent.yml`` through ansible-runner against the host's
address with ``ansible_connection=local``, into a temporary prefix (no service is
started: the test runs the agent process itself, and the agent picks up the token the
playbook installs). The agent drives libvirt's ``test:///default`` driver, so a VM's
whole life runs without a hypervisor; what that driver cannot do (hot-plug, migration)
shows how libvirt errors reach the node.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import subprocess
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from pydantic import SecretStr
from sqlalchemy import select

from agents.kvm.journal import FileJournal
from tests.e2e.conftest import ADMIN_PASSWORD, Start, login_admin
from tests.support.datacenter import add_cluster, add_zone, get_host
from tests.support.kvm_agent import KvmAgentProcess, prefix_paths, random_loopback
from tests.support.real_host import (
    HOST_PASSWORD,
    States,
    add_real_host,
    deploy_vars,
    host_call,
    volume,
)
from zstackpy.core.errors import ZError
from zstackpy.node.node import ManagementNode
from zstackpy.services.host.messages import (
    VmStateChangedOnHostEvent,
)
from zstackpy.services.kvm.models import KVMHostVO
from zstackpy.services.vm.extensions import (
    VmHost,
    VmMigrateRequest,
    VmNicSpec,
    VmOnHost,
    VmStartSpec,
    VmStopRequest,
    VmVolumeRequest,
)
from zstackpy.services.vm.records import backend_for
from zstackpy.services.volume.backends import LocalStorageVolumeBackend
from zstackpy.services.volume.extensions import ImageSource, VolumeStorage

pytestmark = pytest.mark.timeout(240)

PS_PATH = "/zstack_ps"


@pytest.fixture
async def agent(tmp_path: Path) -> AsyncIterator[KvmAgentProcess]:
    process = KvmAgentProcess(random_loopback(), tmp_path / "host", tmp_path / "agent.log")
    await process.start()
    yield process
    await process.stop()


@pytest.fixture
async def real_node(start_node: Start, agent: KvmAgentProcess) -> ManagementNode:
    return await start_node(
        admin_password=SecretStr(ADMIN_PASSWORD),
        simulator=False,
        deploy_extra_vars=deploy_vars(agent.prefix),
    )


async def test_a_vm_lives_its_whole_life_on_a_real_agent(
    real_node: ManagementNode,
    agent: KvmAgentProcess,
    http: aiohttp.ClientSession,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # The node's own logging, and ansible-runner's, at their most talkative. (The SQL
    # driver's DEBUG log of statement parameters is outside this: a node logs at INFO.)
    caplog.set_level(logging.INFO)
    for name in ("zstackpy", "ansible-runner", "ansible_runner"):
        caplog.set_level(logging.DEBUG, logger=name)
    node = real_node
    admin = await login_admin(node, http)
    zone = await add_zone(admin, "kvm-zone")
    cluster = await add_cluster(admin, zone["uuid"], "kvm-cluster")

    # AddKVMHost: the playbook installs the token and settings, the agent answers.
    added = await add_real_host(admin, agent.address, cluster["uuid"])
    assert added.status == 200, added.body
    host = added.body["inventory"]
    assert host["status"] == "Connected"
    assert host["cpuNum"] == 16  # what libvirt's test driver reports
    token_file, _ = prefix_paths(agent.prefix)
    async with node.context.db.session() as session:
        row = await session.get(KVMHostVO, host["uuid"])
        assert row is not None
        token = row.agent_token
        output = await session.scalar(
            select(KVMHostVO.deploy_output).where(KVMHostVO.uuid == host["uuid"])
        )
    assert token_file.read_text().strip() == token
    settings = (agent.prefix / "etc" / "zstackpy" / "kvm-agent.toml").read_text()
    assert node.context.agents.send_command_url in settings
    assert host["uuid"] in settings
    # The playbook's output is kept on the host's record, without any secret.
    assert output is not None
    assert "Install the agent's token" in output
    for secret in (token, HOST_PASSWORD):
        assert secret not in output
        assert secret not in caplog.text

    states = States()
    await node.context.bus.subscribe(VmStateChangedOnHostEvent, states.on_event)
    kvm = backend_for(node.context, "KVM")
    on = VmHost(host["uuid"], agent.address, "KVM")
    vm_uuid = uuid.uuid4().hex

    # Storage and network the VM needs.
    init = await host_call(node, host["uuid"], "/localstorage/init", path=PS_PATH)
    assert init["totalCapacity"] > 0
    root_path = f"{PS_PATH}/rootVolumes/{vm_uuid}/root.qcow2"
    data_path = f"{PS_PATH}/dataVolumes/{vm_uuid}/data.qcow2"
    for path in (root_path, data_path):
        created = await host_call(
            node, host["uuid"], "/localstorage/volume/createempty", installUrl=path, size=1 << 30
        )
        assert created["totalCapacity"] == init["totalCapacity"]
    for bridge_path, extra in (
        ("/network/l2novlan/createbridge", {}),
        ("/network/l2vlan/createbridge", {"vlan": 10}),
    ):
        await host_call(
            node,
            host["uuid"],
            bridge_path,
            physicalInterfaceName="eth1",
            bridgeName=f"br_eth1{'_10' if extra else ''}",
            **extra,
        )

    before = await host_call(node, host["uuid"], "/host/capacity")
    nic = VmNicSpec(
        uuid=uuid.uuid4().hex,
        l3_network_uuid="l3",
        mac="fa:16:3e:00:00:01",
        ip="192.168.1.10",
        netmask="255.255.255.0",
        gateway="192.168.1.1",
        device_id=0,
        internal_name="vnic1.0",
        bridge_name="br_eth1",
        is_default=True,
    )
    await kvm.start_vm(
        VmStartSpec(
            vm_uuid=vm_uuid,
            name="vm-on-libvirt",
            internal_id=1,
            host=on,
            cpu_num=2,
            cpu_speed=0,
            memory_size=512 << 20,
            platform="Linux",
            architecture="x86_64",
            root_volume=volume(uuid.uuid4().hex, root_path, 0),
            data_volumes=(),
            nics=(nic,),
        )
    )
    await states.wait_for(vm_uuid, "Running")
    assert (await kvm.list_vm_states(on)).states == {vm_uuid: "Running"}
    # A ping asked for them carries the same states (one call for the ping and its sync).
    pinged = await host_call(node, host["uuid"], "/host/ping", **kvm.ping_fields())
    assert kvm.states_in_ping(pinged) == await kvm.list_vm_states(on)
    assert pinged["hostUuid"] == host["uuid"]
    capacity = await host_call(node, host["uuid"], "/host/capacity")
    assert capacity["usedCpu"] - before["usedCpu"] == 2
    assert capacity["usedMemory"] - before["usedMemory"] == 512 << 20

    await kvm.pause_vm(VmOnHost(vm_uuid, on))
    await states.wait_for(vm_uuid, "Paused")
    await kvm.resume_vm(VmOnHost(vm_uuid, on))
    await states.wait_for(vm_uuid, "Running")
    await kvm.reboot_vm(VmOnHost(vm_uuid, on))
    assert (await kvm.list_vm_states(on)).states == {vm_uuid: "Running"}

    # What libvirt refuses reaches the node as a structured error with libvirt's words.
    data = volume(uuid.uuid4().hex, data_path, 1, "Data")
    with pytest.raises(ZError) as refused:
        await kvm.attach_volume(VmVolumeRequest(vm_uuid, on, data))
    assert refused.value.code == "AGENT.1003"
    details = refused.value.details["agentDetails"]
    assert isinstance(details, dict)
    assert details["libvirtCode"] == 3  # VIR_ERR_NO_SUPPORT
    assert "not supported" in str(details["libvirtMessage"])
    assert "libvirt failed to attach a volume" in refused.value.description
    with pytest.raises(ZError) as not_migrated:
        await kvm.migrate_vm(VmMigrateRequest(vm_uuid, on, VmHost("h2", "127.0.0.2", "KVM")))
    migrate_details = not_migrated.value.details["agentDetails"]
    assert isinstance(migrate_details, dict)
    assert "migration" in str(migrate_details["libvirtMessage"])

    await kvm.stop_vm(VmStopRequest(vm_uuid, on, type="grace", timeout=30))
    await states.wait_for(vm_uuid, "Stopped")
    assert (await kvm.list_vm_states(on)).states == {}
    # A stopped VM is undefined; stopping or destroying it again succeeds.
    await kvm.destroy_vm(VmOnHost(vm_uuid, on))

    # A snapshot of the stopped VM's root volume: a new top file over the old one.
    top = f"{PS_PATH}/rootVolumes/{vm_uuid}/top.qcow2"
    snap = await host_call(
        node,
        host["uuid"],
        "/localstorage/snapshot/create",
        volumeInstallPath=root_path,
        newVolumeInstallPath=top,
    )
    assert snap["snapshotInstallPath"] == root_path
    assert snap["size"] == 1 << 30
    for path in (top, root_path, data_path):
        await host_call(node, host["uuid"], "/localstorage/delete", path=path)

    # NFS primary storage: libvirt mounts the share as a netfs pool.
    ps_uuid = uuid.uuid4().hex
    nfs = {"uuid": ps_uuid}
    mounted = await host_call(
        node,
        host["uuid"],
        "/nfsprimarystorage/mount",
        url="nfs.example:/export",
        mountPath=f"/opt/zstack/nfsprimarystorage/prim-{ps_uuid}",
        **nfs,
    )
    assert mounted["totalCapacity"] > 0
    nfs_volume = f"/opt/zstack/nfsprimarystorage/prim-{ps_uuid}/rootVolumes/v.qcow2"
    await host_call(
        node,
        host["uuid"],
        "/nfsprimarystorage/createemptyvolume",
        installUrl=nfs_volume,
        size=1 << 30,
        **nfs,
    )
    await host_call(node, host["uuid"], "/nfsprimarystorage/delete", installPath=nfs_volume, **nfs)
    await host_call(node, host["uuid"], "/nfsprimarystorage/unmount", **nfs)
    with pytest.raises(ZError, match="is not mounted on this host"):
        await host_call(node, host["uuid"], "/nfsprimarystorage/getcapacity", **nfs)

    # ReconnectHost runs the playbook again (real hosts) and connects.
    again = await admin.finish(
        await admin.request("PUT", f"/hosts/{host['uuid']}/actions", json={"reconnectHost": {}}),
        timeout=180,
    )
    assert again.status == 200, again.body
    assert (await get_host(admin, host["uuid"]))["status"] == "Connected"
    assert HOST_PASSWORD not in caplog.text
    assert token not in caplog.text


async def test_a_failing_playbook_fails_add_host_naming_the_task_and_rolls_back(
    start_node: Start, agent: KvmAgentProcess, http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("the prefix must be a directory\n")
    node = await start_node(
        admin_password=SecretStr(ADMIN_PASSWORD),
        simulator=False,
        deploy_extra_vars=deploy_vars(blocker),
    )
    admin = await login_admin(node, http)
    zone = await add_zone(admin, "fail-zone")
    cluster = await add_cluster(admin, zone["uuid"], "fail-cluster")
    failed = await add_real_host(admin, agent.address, cluster["uuid"])
    error = failed.error
    assert error["code"] == "AGENT.1007", error
    assert "Create the agent's directories" in error["description"]
    assert error["details"]["task"] == "Create the agent's directories"
    assert HOST_PASSWORD not in str(failed.body)
    # Rolled back: no host is left.
    hosts = await admin.query("/hosts")
    assert hosts.body["inventories"] == []


async def test_a_restarted_agent_answers_a_resent_task_from_its_journal(
    agent: KvmAgentProcess,
) -> None:
    """The node resends a command with the same task id after the agent restarted: a task
    that finished answers its result again without running; one the agent was running
    when it died answers that it was lost."""
    token = "journal-test-token"
    token_file, state_dir = prefix_paths(agent.prefix)
    token_file.parent.mkdir(parents=True, exist_ok=True)
    token_file.write_text(token)
    callbacks: asyncio.Queue[tuple[str, dict[str, Any]]] = asyncio.Queue()

    async def callback(request: web.Request) -> web.Response:
        await callbacks.put((request.headers["taskuuid"], await request.json()))
        return web.json_response({})

    app = web.Application()
    app.router.add_post("/cb", callback)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    callback_url = f"http://127.0.0.1:{runner.addresses[0][1]}/cb"
    try:
        async with aiohttp.ClientSession() as http:

            async def send(path: str, task: str, body: dict[str, Any]) -> dict[str, Any]:
                headers = {
                    "Authorization": f"Bearer {token}",
                    "taskuuid": task,
                    "callbackurl": callback_url,
                }
                async with http.post(agent.base_url + path, json=body, headers=headers) as r:
                    assert r.status == 200, await r.text()
                async with asyncio.timeout(15):
                    got_task, result = await callbacks.get()
                assert got_task == task
                return result

            init = await send("/localstorage/init", uuid.uuid4().hex, {"path": PS_PATH})
            assert init["success"] is True
            read = uuid.uuid4().hex
            first = await send("/localstorage/getphysicalcapacity", read, {})
            assert first["success"] is True
            # Killed: a crash. A command it was running leaves only its start behind.
            await agent.kill()
            lost = uuid.uuid4().hex
            journal = FileJournal(state_dir / "tasks.jsonl")
            await journal.started(lost, "/vm/start")
            await agent.start()

            # Run again, the read would fail: the new process has no local storage yet.
            again = await send("/localstorage/getphysicalcapacity", read, {})
            assert again == first
            rerun = await send("/localstorage/getphysicalcapacity", uuid.uuid4().hex, {})
            assert rerun["success"] is False
            assert "not initialised" in rerun["error"]
            gone = await send("/vm/start", lost, {"vmInstanceUuid": uuid.uuid4().hex})
            assert gone["success"] is False
            assert gone["details"]["lost"] is True
            assert "was running when the agent restarted" in gone["error"]
    finally:
        await runner.cleanup()


def _qemu(*argv: str) -> None:
    subprocess.run(argv, check=True, capture_output=True)


def _reads(path: Path, pattern: int, offset: int) -> bool:
    done = subprocess.run(
        ["qemu-io", "-f", "qcow2", "-c", f"read -P {pattern:#x} {offset} 64k", str(path)],
        capture_output=True,
        text=True,
    )
    return done.returncode == 0 and "Pattern verification failed" not in done.stdout


@pytest.mark.skipif(shutil.which("qemu-io") is None, reason="qemu-utils is not installed")
async def test_the_node_caches_an_image_and_merges_a_snapshot_through_a_real_agent(
    real_node: ManagementNode, agent: KvmAgentProcess, http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    """The node's own volume backend (its paths and fields) against the agent process, on
    real files: an image of a backup storage on this machine copied into the image cache,
    a volume made over it and snapshotted, the snapshot merged into the volume; and a
    security-group set the agent on the test driver keeps without touching iptables."""
    node = real_node
    admin = await login_admin(node, http)
    zone = await add_zone(admin, "files-zone")
    cluster = await add_cluster(admin, zone["uuid"], "files-cluster")
    added = await add_real_host(admin, agent.address, cluster["uuid"])
    assert added.status == 200, added.body
    host_uuid = added.body["inventory"]["uuid"]

    async def call(path: str, cmd: dict[str, Any]) -> dict[str, Any]:
        return await host_call(node, host_uuid, path, **cmd)

    root = tmp_path / "ps"
    storage = VolumeStorage("ps-uuid", "LocalStorage", str(root), None)
    backend = LocalStorageVolumeBackend()
    await call("/localstorage/init", {"path": str(root)})
    image = tmp_path / "bs" / "image.qcow2"
    image.parent.mkdir()
    _qemu("qemu-img", "create", "-f", "qcow2", str(image), "32M")
    _qemu("qemu-io", "-f", "qcow2", "-c", "write -P 0x11 0 64k", str(image))
    # The backup storage's hostname is the agent's own (loopback) address: a local copy.
    source = ImageSource("bs-uuid", agent.address, "root", 22, str(image))
    cache = backend.cache_path(storage, uuid.uuid4().hex)
    await backend.download_to_cache(storage, source, cache, call)
    assert _reads(Path(cache), 0x11, 0)

    # A volume over the cached image, snapshotted once: snapshot <- volume's file.
    folder = root / "rootVolumes" / "vol-1"
    folder.mkdir(parents=True)
    snapshot, volume_file = folder / "snap.qcow2", folder / "top.qcow2"
    for top, below in ((snapshot, cache), (volume_file, str(snapshot))):
        _qemu("qemu-img", "create", "-f", "qcow2", "-F", "qcow2", "-b", below, str(top))
    _qemu("qemu-io", "-f", "qcow2", "-c", "write -P 0x22 1M 64k", str(snapshot))
    await backend.merge(storage, str(snapshot), str(volume_file), call)
    merged = subprocess.run(
        ["qemu-img", "info", "-U", str(volume_file)], check=True, capture_output=True, text=True
    ).stdout
    assert "backing file" not in merged
    assert _reads(volume_file, 0x11, 0)
    assert _reads(volume_file, 0x22, 1 << 20)

    # qemu-img's refusal reaches the node as a structured agent error.
    with pytest.raises(ZError) as refused:
        await backend.merge(storage, str(snapshot), str(folder / "gone.qcow2"), call)
    assert refused.value.code == "AGENT.1003"
    details = refused.value.details["agentDetails"]
    assert isinstance(details, dict)
    assert details["qemuImgExitCode"] == 1

    rules = await call(
        "/securitygroup/refreshrulesonhost",
        {
            "ruleTOs": [
                {
                    "vmNicUuid": uuid.uuid4().hex,
                    "vmNicInternalName": "vnic9.0",
                    "rules": [{"type": "Ingress", "protocol": "TCP", "startPort": 22}],
                }
            ],
            "securityGroupMembers": {},
        },
    )
    assert rules["changedTables"] == []  # the test driver: kept, not applied
