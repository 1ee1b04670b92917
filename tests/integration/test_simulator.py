"""The simulator over real loopback HTTP: agent routes as the node uses them, control API."""

from __future__ import annotations

import asyncio
import re
import signal
import sys
import uuid
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest

from simulator import Simulator
from tests.support.processes import REPO
from tests.support.sim import NodeStub

TOKEN = "host-token-" + "b" * 21
GIB = 1024**3


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with Simulator() as s:
        yield s


@pytest.fixture
async def node() -> AsyncIterator[NodeStub]:
    stub = NodeStub()
    await stub.start()
    yield stub
    await stub.stop()


class Control:
    """The control API, as a node-side test harness would drive it."""

    def __init__(self, sim: Simulator, node: NodeStub) -> None:
        self.base = sim.base_url
        assert node.http is not None
        self.http = node.http

    async def request(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        async with self.http.request(method, self.base + path, json=body) as resp:
            return resp.status, await resp.json()

    async def deploy(self, address: str, port: int = 7070, **extra: Any) -> dict[str, Any]:
        body = {"address": address, "port": port, "sshPort": 22, "token": TOKEN, **extra}
        status, answer = await self.request("POST", "/simulator/deploy", body)
        assert status == 200
        assert isinstance(answer, dict)
        return answer


def agent_url(sim: Simulator, address: str, path: str, port: int = 7070) -> str:
    return f"{sim.base_url}/agents/{quote(address, safe='')}/{port}{path}"


async def connect(sim: Simulator, node: NodeStub, address: str, host_uuid: str) -> None:
    body = {"hostUuid": host_uuid, "sendCommandUrl": node.send_command_url, "version": "v1"}
    status, answer = await node.send(
        agent_url(sim, address, "/host/connect"), body, token=TOKEN, task_uuid=None
    )
    assert status == 200
    assert answer["success"] is True, answer


async def test_undeployed_machine_drops_the_connection(sim: Simulator, node: NodeStub) -> None:
    sim.declare("10.0.0.5")
    for address in ("10.0.0.5", "never.declared"):
        with pytest.raises(aiohttp.ServerDisconnectedError):
            await node.send(agent_url(sim, address, "/host/ping"), {}, token=TOKEN)


async def test_deploy_checks_credentials(sim: Simulator, node: NodeStub) -> None:
    ctl = Control(sim, node)
    status, state = await ctl.request(
        "POST", "/simulator/hosts", {"address": "10.0.0.6", "password": "secret"}
    )
    assert status == 200
    assert state["deployed"] is False
    assert state["cpuNum"] == 32
    answer = await ctl.deploy("10.0.0.6", username="root", password="wrong")
    assert answer == {
        "success": False,
        "error": "authentication failed for root@10.0.0.6:22",
    }
    answer = await ctl.deploy("10.0.0.6", username="admin", password="secret")
    assert answer["success"] is False
    assert (await ctl.deploy("10.0.0.6", username="root", password="secret"))["success"]
    # An undeclared machine accepts any password.
    assert (await ctl.deploy("10.0.0.7", username="root", password="x"))["success"]


async def test_deployed_host_connects_pings_and_reports_capacity(
    sim: Simulator, node: NodeStub
) -> None:
    ctl = Control(sim, node)
    assert (await ctl.deploy("kvm1.example"))["success"]
    await connect(sim, node, "kvm1.example", "h" * 32)
    ping = await node.call(agent_url(sim, "kvm1.example", "/host/ping"), {}, token=TOKEN)
    assert ping == {
        "success": True,
        "error": None,
        "hostUuid": "h" * 32,
        "sendCommandUrl": node.send_command_url,
        "version": "v1",
    }
    cap = await node.call(agent_url(sim, "kvm1.example", "/host/capacity"), token=TOKEN)
    assert cap["cpuNum"] == 32
    assert cap["totalMemory"] == 128 * GIB
    assert (cap["usedCpu"], cap["usedMemory"], cap["cpuSockets"]) == (0, 0, 2)
    fact = await node.call(agent_url(sim, "kvm1.example", "/host/fact"), token=TOKEN)
    assert (fact["osDistribution"], fact["hvmCpuFlag"]) == ("Rocky", "vmx")
    status, _ = await node.send(agent_url(sim, "kvm1.example", "/host/ping"), {}, token="bad")
    assert status == 401
    status, state = await ctl.request("GET", "/simulator/hosts/kvm1.example?port=7070")
    assert status == 200
    assert state["hostUuid"] == "h" * 32
    assert state["commands"] == {
        "/host/connect": 1,
        "/host/ping": 1,
        "/host/capacity": 1,
        "/host/fact": 1,
    }


async def test_network_checks_and_bridges(sim: Simulator, node: NodeStub) -> None:
    sim.deploy("10.0.1.1", token=TOKEN)
    check = agent_url(sim, "10.0.1.1", "/network/checkphysicalnetworkinterface")
    status, answer = await node.send(check, {"interfaceNames": ["eth0", "eth9"]}, token=TOKEN)
    assert status == 200
    assert answer["success"] is False
    assert "eth9" in answer["error"]
    bridge = {"physicalInterfaceName": "eth1", "bridgeName": "br_eth1_100", "vlan": 100}
    url = agent_url(sim, "10.0.1.1", "/network/l2vlan/createbridge")
    assert (await node.call(url, bridge, token=TOKEN))["success"] is True
    missing = await node.call(url, {**bridge, "physicalInterfaceName": "eth7"}, token=TOKEN)
    assert missing["success"] is False
    assert "eth7" in missing["error"]
    assert sim.machine("10.0.1.1").bridges == {
        "br_eth1_100": {"physicalInterfaceName": "eth1", "l2NetworkUuid": None, "vlan": 100}
    }


async def test_vm_start_uses_capacity_and_refuses_past_it(sim: Simulator, node: NodeStub) -> None:
    sim.declare("10.0.2.1", memory_size=8 * GIB, cpu_num=4, cpu_overprovisioning=1)
    sim.deploy("10.0.2.1", token=TOKEN)
    start = agent_url(sim, "10.0.2.1", "/vm/start")
    vm = {"vmInstanceUuid": "vm1", "vmName": "one", "memory": 6 * GIB, "cpuNum": 2}
    assert (await node.call(start, vm, token=TOKEN))["success"] is True
    cap = await node.call(agent_url(sim, "10.0.2.1", "/host/capacity"), token=TOKEN)
    assert (cap["usedCpu"], cap["usedMemory"]) == (2, 6 * GIB)

    too_big = await node.call(start, {**vm, "vmInstanceUuid": "vm2"}, token=TOKEN)
    assert too_big["success"] is False
    assert "not enough free memory" in too_big["error"]
    too_many = {**vm, "vmInstanceUuid": "vm3", "memory": GIB, "cpuNum": 3}
    assert "not enough free CPU" in (await node.call(start, too_many, token=TOKEN))["error"]

    sync = await node.call(agent_url(sim, "10.0.2.1", "/vm/vmsync"), token=TOKEN)
    assert sync["states"] == {"vm1": "Running"}
    pause = agent_url(sim, "10.0.2.1", "/vm/pause")
    assert (await node.call(pause, {"uuid": "vm1"}, token=TOKEN))["success"] is True
    check = agent_url(sim, "10.0.2.1", "/vm/checkstate")
    states = await node.call(check, {"vmUuids": ["vm1", "vm2"]}, token=TOKEN)
    assert states["states"] == {"vm1": "Paused", "vm2": "Shutdown"}

    destroy = agent_url(sim, "10.0.2.1", "/vm/destroy")
    assert (await node.call(destroy, {"uuid": "vm1"}, token=TOKEN))["success"] is True
    assert (await node.call(start, {**vm, "vmInstanceUuid": "vm2"}, token=TOKEN))["success"]
    machine = sim.machine("10.0.2.1")
    assert (machine.used_cpu, machine.used_memory) == (2, 6 * GIB)


async def test_vm_migrates_to_the_machine_with_that_address(sim: Simulator, node: NodeStub) -> None:
    for address in ("10.0.3.1", "10.0.3.2"):
        sim.deploy(address, token=TOKEN)
    vm = {"vmInstanceUuid": "vm1", "memory": GIB, "cpuNum": 1}
    await node.call(agent_url(sim, "10.0.3.1", "/vm/start"), vm, token=TOKEN)
    migrate = agent_url(sim, "10.0.3.1", "/vm/migrate")
    nowhere = await node.call(
        migrate, {"vmUuid": "vm1", "destHostManagementIp": "10.0.3.9"}, token=TOKEN
    )
    assert "unreachable" in nowhere["error"]
    moved = await node.call(
        migrate, {"vmUuid": "vm1", "destHostManagementIp": "10.0.3.2"}, token=TOKEN
    )
    assert moved["success"] is True
    assert sim.machine("10.0.3.1").vms == {}
    assert sim.machine("10.0.3.2").used_memory == GIB


async def test_dead_host_drops_connections_and_revives(sim: Simulator, node: NodeStub) -> None:
    ctl = Control(sim, node)
    sim.deploy("10.0.4.1", token=TOKEN)
    ping = agent_url(sim, "10.0.4.1", "/host/ping")
    status, state = await ctl.request("PUT", "/simulator/hosts/10.0.4.1/alive", {"alive": False})
    assert (status, state["alive"]) == (200, False)
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await node.send(ping, {}, token=TOKEN)
    assert (await ctl.deploy("10.0.4.1"))["error"] == "10.0.4.1:22 is unreachable"
    await ctl.request("PUT", "/simulator/hosts/10.0.4.1/alive?port=7070", {"alive": True})
    assert (await node.call(ping, {}, token=TOKEN))["success"] is True


async def test_dying_host_never_answers_running_commands(sim: Simulator, node: NodeStub) -> None:
    sim.deploy("10.0.4.2", token=TOKEN)
    sim.set_fault("10.0.4.2", "/host/ping", delay=30)
    task_uuid = uuid.uuid4().hex
    await node.send(agent_url(sim, "10.0.4.2", "/host/ping"), {}, token=TOKEN, task_uuid=task_uuid)
    await sim.set_alive("10.0.4.2", False)
    agent = sim.machine("10.0.4.2").agent
    assert agent is not None
    assert agent.running == 0
    assert node.callbacks == {}


async def test_faults_fail_delay_drop_and_times(sim: Simulator, node: NodeStub) -> None:
    ctl = Control(sim, node)
    sim.deploy("10.0.5.1", token=TOKEN)
    ping = agent_url(sim, "10.0.5.1", "/host/ping")
    fault = {"path": "/host/ping", "fail": "libvirt is down", "times": 2}
    status, state = await ctl.request("PUT", "/simulator/hosts/10.0.5.1/faults?port=7070", fault)
    assert status == 200
    assert state["faults"]["/host/ping"]["times"] == 2
    for _ in range(2):
        assert await node.call(ping, {}, token=TOKEN) == {
            "success": False,
            "error": "libvirt is down",
        }
    assert (await node.call(ping, {}, token=TOKEN))["success"] is True  # spent

    await ctl.request(
        "PUT", "/simulator/hosts/10.0.5.1/faults", {"path": "/host/ping", "delay": 0.3}
    )
    loop = asyncio.get_running_loop()
    began = loop.time()
    assert (await node.call(ping, {}, token=TOKEN))["success"] is True
    assert loop.time() - began >= 0.3

    sim.set_fault("10.0.5.1", "/host/ping", drop_callback=True, times=1)
    task_uuid = uuid.uuid4().hex
    assert (await node.send(ping, {}, token=TOKEN, task_uuid=task_uuid))[0] == 200
    with pytest.raises(TimeoutError):
        await node.wait_result(task_uuid, timeout=0.5)
    # The command did run: a resend of the same task gets its cached result.
    await node.send(ping, {}, token=TOKEN, task_uuid=task_uuid)
    assert (await node.wait_result(task_uuid))["success"] is True

    sim.set_fault("10.0.5.1", "/host/capacity", fail="x")
    status, state = await ctl.request("DELETE", "/simulator/hosts/10.0.5.1/faults")
    assert (status, state["faults"]) == (200, {})
    assert state["commands"]["/host/ping"] == 5  # the resend did not run it again


async def test_report_reaches_the_node(sim: Simulator, node: NodeStub) -> None:
    ctl = Control(sim, node)
    sim.deploy("10.0.6.1", token=TOKEN)
    report = {"commandpath": "/kvm/reportvmstate", "body": {"vmUuid": "v1", "vmState": "Running"}}
    status, answer = await ctl.request("POST", "/simulator/hosts/10.0.6.1/report", report)
    assert status == 409
    assert "sendCommandUrl" in answer["error"]
    await connect(sim, node, "10.0.6.1", "h1")
    status, answer = await ctl.request("POST", "/simulator/hosts/10.0.6.1/report", report)
    assert (status, answer["success"]) == (200, True)
    [got] = await node.wait_reports()
    assert got.commandpath == "/kvm/reportvmstate"
    assert got.authorization == f"Bearer {TOKEN}"
    assert got.body == report["body"]


async def test_nfs_share_is_shared_between_hosts(sim: Simulator, node: NodeStub) -> None:
    ctl = Control(sim, node)
    url = "nfs://nfs1.example/export"
    status, share = await ctl.request("POST", "/simulator/nfs", {"url": url, "capacity": 10 * GIB})
    assert (status, share["capacity"]) == (200, 10 * GIB)
    for n, address in enumerate(("10.0.7.1", "10.0.7.2")):
        sim.deploy(address, token=TOKEN)
        mount = {"url": url, "mountPath": "/mnt/ps1", "uuid": "ps1"}
        mounted = await node.call(
            agent_url(sim, address, "/nfsprimarystorage/mount"), mount, token=TOKEN
        )
        assert mounted["availableCapacity"] == 10 * GIB - n * 4 * GIB
        create = {"uuid": "ps1", "installUrl": f"/mnt/ps1/v{n}.qcow2", "size": 4 * GIB}
        created = await node.call(
            agent_url(sim, address, "/nfsprimarystorage/createemptyvolume"), create, token=TOKEN
        )
        assert created["success"] is True
    full = await node.call(
        agent_url(sim, "10.0.7.1", "/nfsprimarystorage/createemptyvolume"),
        {"uuid": "ps1", "installUrl": "/mnt/ps1/v9.qcow2", "size": 4 * GIB},
        token=TOKEN,
    )
    assert "not enough space" in full["error"]
    delete = {"uuid": "ps1", "installPath": "/mnt/ps1/v0.qcow2"}
    await node.call(agent_url(sim, "10.0.7.2", "/nfsprimarystorage/delete"), delete, token=TOKEN)
    cap = await node.call(
        agent_url(sim, "10.0.7.1", "/nfsprimarystorage/getcapacity"),
        {"uuid": "ps1", "mountPath": "/mnt/ps1"},
        token=TOKEN,
    )
    assert cap["availableCapacity"] == 6 * GIB


async def test_local_storage_books(sim: Simulator, node: NodeStub) -> None:
    sim.declare("10.0.8.1", local_storage_capacity=10 * GIB)
    sim.deploy("10.0.8.1", token=TOKEN)

    def url(path: str) -> str:
        return agent_url(sim, "10.0.8.1", path)

    init = await node.call(
        url("/localstorage/init"), {"path": "/local", "hostUuid": "h"}, token=TOKEN
    )
    assert (init["totalCapacity"], init["availableCapacity"]) == (10 * GIB, 10 * GIB)
    create = {"installUrl": "/local/v1.qcow2", "size": 3 * GIB, "volumeUuid": "v1"}
    assert (await node.call(url("/localstorage/volume/createempty"), create, token=TOKEN))[
        "availableCapacity"
    ] == 7 * GIB
    clone = {"templatePathInCache": "/local/cache/i1", "installUrl": "/local/r1", "volumeUuid": "r"}
    made = await node.call(url("/localstorage/volume/createvolumefromcache"), clone, token=TOKEN)
    assert (made["size"], made["actualSize"]) == (GIB, GIB)
    await node.call(url("/localstorage/delete"), {"path": "/local/v1.qcow2"}, token=TOKEN)
    cap = await node.call(url("/localstorage/getphysicalcapacity"), {}, token=TOKEN)
    assert cap["availableCapacity"] == 9 * GIB


async def test_sftp_download_simulates_size_and_format(sim: Simulator, node: NodeStub) -> None:
    sim.declare("bs1.example", 7171, storage_capacity=10 * GIB)
    sim.deploy("bs1.example", 7171, token=TOKEN)

    def url(path: str) -> str:
        return agent_url(sim, "bs1.example", path, port=7171)

    connected = await node.call(
        url("/sftpbackupstorage/connect"), {"storagePath": "/bs", "uuid": "bs1"}, token=TOKEN
    )
    assert connected["availableCapacity"] == 10 * GIB
    cases = [
        ("http://images.example/centos.iso?size=123456", 123456, "iso"),
        ("https://images.example/disk.raw", GIB, "raw"),
        ("file:///images/disk.img", GIB, "qcow2"),
    ]
    for n, (image_url, size, fmt) in enumerate(cases):
        cmd = {"url": image_url, "installPath": f"/bs/i{n}", "imageUuid": f"i{n}", "timeout": 60}
        got = await node.call(url("/sftpbackupstorage/download"), cmd, token=TOKEN)
        assert (got["size"], got["actualSize"], got["format"]) == (size, size, fmt), got
        assert re.fullmatch(r"[0-9a-f]{32}", got["md5Sum"])
    bad = {"url": "ftp://images.example/x.qcow2", "installPath": "/bs/x", "imageUuid": "x"}
    refused = await node.call(url("/sftpbackupstorage/download"), bad, token=TOKEN)
    assert refused["success"] is False
    assert "'ftp'" in refused["error"]
    await node.call(url("/sftpbackupstorage/delete"), {"installUrl": "/bs/i1"}, token=TOKEN)
    cap = await node.call(url("/sftpbackupstorage/getcapacity"), {}, token=TOKEN)
    assert cap["availableCapacity"] == 10 * GIB - GIB - 123456
    # The KVM command set is not on the backup storage port.
    status, _ = await node.send(url("/host/ping"), {}, token=TOKEN)
    assert status == 404


async def test_control_api_errors(sim: Simulator, node: NodeStub) -> None:
    ctl = Control(sim, node)
    status, answer = await ctl.request("GET", "/simulator/hosts/10.9.9.9")
    assert (status, answer["success"]) == (404, False)
    status, _ = await ctl.request("POST", "/simulator/hosts", {"address": "10.9.9.9", "port": 22})
    assert status == 400
    status, _ = await ctl.request("POST", "/simulator/hosts", {"address": "h", "cpuNum": "many"})
    assert status == 400
    sim.declare("10.9.9.8")
    status, listed = await ctl.request("GET", "/simulator/hosts")
    assert [m["address"] for m in listed] == ["10.9.9.8"]


async def test_callback_urls_must_be_loopback(sim: Simulator, node: NodeStub) -> None:
    sim.deploy("10.0.9.1", token=TOKEN)
    assert node.http is not None
    headers = {
        "Authorization": f"Bearer {TOKEN}",
        "taskuuid": uuid.uuid4().hex,
        "callbackurl": "http://192.0.2.1:8080/zstack/asyncrest/callback",
    }
    async with node.http.post(
        agent_url(sim, "10.0.9.1", "/host/ping"), json={}, headers=headers
    ) as resp:
        assert resp.status == 400
    assert sim.machine("10.0.9.1").commands is None


async def test_standalone_process_serves_and_stops_on_sigterm(node: NodeStub) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "simulator",
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        cwd=REPO,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stderr is not None
        async with asyncio.timeout(30):
            while True:
                line = (await proc.stderr.readline()).decode()
                assert line, "the simulator exited before it was ready"
                ready = re.search(r"simulator ready at (http://127\.0\.0\.1:\d+)", line)
                if ready:
                    break
        base = ready.group(1)
        assert node.http is not None
        body = {"address": "10.1.0.1", "token": TOKEN}
        async with node.http.post(f"{base}/simulator/deploy", json=body) as resp:
            assert await resp.json() == {"success": True, "error": None}
        async with node.http.get(f"{base}/simulator/hosts/10.1.0.1") as resp:
            assert (await resp.json())["deployed"] is True
        proc.send_signal(signal.SIGTERM)
        async with asyncio.timeout(15):
            assert await proc.wait() == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def test_adopted_hosts_and_vms_answer_as_their_template(
    sim: Simulator, node: NodeStub
) -> None:
    """The fast path's adoption: a machine set up like a connected template answers pings
    as its own host; adopted VMs run there with their root volumes on the NFS share; a
    batch that does not fit (or names an unknown template) is refused whole."""
    ctl = Control(sim, node)
    await ctl.deploy("tmpl.example")
    await connect(sim, node, "tmpl.example", "t" * 32)
    sim.machine("tmpl.example").nfs_mounts = {"ps": "nfs.example:/share"}
    sim.declare_nfs("nfs.example:/share", capacity=3 * GIB)
    new_token = "host-token-" + "c" * 21
    host = {"address": "copy.example", "hostUuid": "c" * 32, "token": new_token}
    status, _ = await ctl.request("POST", "/simulator/adopt", {"like": "nope", "hosts": [host]})
    assert status == 404
    assert sim.find("copy.example") is None
    status, answer = await ctl.request(
        "POST", "/simulator/adopt", {"like": "tmpl.example", "hosts": [host]}
    )
    assert (status, answer) == (200, {"hosts": 1, "vms": 0})
    ping = await node.call(agent_url(sim, "copy.example", "/host/ping"), {}, token=new_token)
    assert (ping["hostUuid"], ping["version"]) == ("c" * 32, "v1")

    def vm(i: int) -> dict[str, Any]:
        return {
            "address": "copy.example", "uuid": f"{i:032x}", "name": f"vm-{i}", "cpuNum": 1,
            "memorySize": GIB, "nics": [f"{i:031x}n"], "nfsUrl": "nfs.example:/share",
            "rootPath": f"/ps/vol-{i}.qcow2", "rootSize": GIB,
        }  # fmt: skip

    too_many = {"vms": [vm(i) for i in range(4)]}  # 4 GiB of root volumes on a 3 GiB share
    status, answer = await ctl.request("POST", "/simulator/adopt", too_many)
    assert status == 400, answer
    assert sim.machine("copy.example").vms is None
    assert sim.nfs_share("nfs.example:/share").used == 0
    status, _ = await ctl.request("POST", "/simulator/adopt", {"vms": [vm(1), vm(2)]})
    assert status == 200
    copy = sim.machine("copy.example")
    assert sorted(copy.vms or {}) == [f"{1:032x}", f"{2:032x}"]
    assert (copy.used_cpu, copy.used_memory) == (2, 2 * GIB)
    assert sim.nfs_share("nfs.example:/share").used == 2 * GIB
    listed = await node.call(agent_url(sim, "copy.example", "/vm/vmsync"), {}, token=new_token)
    assert set(listed["states"]) == {f"{1:032x}", f"{2:032x}"}, listed
