"""VM state sync with the simulated hosts: what a host reports wins. A VM an agent reports
stopped (or running) changes state; the VMs of a host that goes down become Unknown and
come back to what the host runs when it returns (a VM it lost is Stopped, one nobody
knows is reported); after random host deaths and returns the database agrees with the
simulated machines."""

from __future__ import annotations

import logging
import random
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import aiohttp
import pytest
from pydantic import SecretStr
from sqlalchemy import update

from simulator import Simulator
from simulator.machine import Vm
from tests.e2e.conftest import ADMIN_PASSWORD, Start, login_admin
from tests.e2e.test_vm_lifecycle import get_vm, inventories, machine_vms, new_vm, vm_action
from tests.support.api_client import ApiClient
from tests.support.datacenter import (
    GIB,
    add_full_datacenter,
    set_global_config,
    wait_for,
    wait_host_status,
)
from zstackpy.core.db import Database
from zstackpy.node.node import ManagementNode
from zstackpy.services.host.models import HostVO
from zstackpy.services.vm.messages import ReconcileVmStateMsg, VmRowStamp
from zstackpy.services.vm.models import VmInstanceVO

HOST_IPS = ["10.64.0.1", "10.64.0.2", "10.64.0.3"]


async def _fast_pings(admin: ApiClient) -> None:
    """Ping every 0.1 s; Disconnected after 2 failed pings."""
    await set_global_config(admin, "host", "ping.timeout", 0.5)
    await set_global_config(admin, "host", "ping.maxFailure", 2)
    await set_global_config(admin, "host", "ping.interval", 0.1)


async def _wait_state(admin: ApiClient, uuid: str, state: str) -> dict[str, Any]:
    found: dict[str, Any] = {}

    async def reached() -> bool:
        found.update(await get_vm(admin, uuid) or {})
        return found.get("state") == state

    await wait_for(reached, timeout=5.0)
    return found


async def _free_cpu(admin: ApiClient, host_uuid: str) -> int:
    hosts = await inventories(admin, "/hosts", f"uuid={host_uuid}")
    return int(hosts[0]["availableCpuCapacity"])


async def test_agent_reports_move_the_vm(admin: ApiClient, sim: Simulator) -> None:
    dc = await add_full_datacenter(admin, "rep", HOST_IPS[:1], storage=("nfs",))
    host = dc["hosts"][0]
    ip, total = host["managementIp"], host["totalCpuCapacity"]
    vm = await new_vm(admin, dc, "guest")
    uuid = vm["uuid"]

    # The guest powered itself off: the agent says so.
    sim.machine(ip).remove_vm(uuid)
    body = {"hostUuid": host["uuid"], "vmUuid": uuid, "vmState": "Shutdown"}
    await sim.report(ip, "/kvm/reportvmstate", body)
    stopped = await _wait_state(admin, uuid, "Stopped")
    assert stopped.get("hostUuid") is None
    assert stopped["lastHostUuid"] == host["uuid"]
    assert await _free_cpu(admin, host["uuid"]) == total

    # Someone started it behind the node's back: it is Running there, with its capacity.
    sim.machine(ip).add_vm(uuid, Vm("Running", 2, 2 * GIB))
    await sim.report(ip, "/kvm/reportvmstate", {**body, "vmState": "Running"})
    running = await _wait_state(admin, uuid, "Running")
    assert running["hostUuid"] == host["uuid"]
    assert await _free_cpu(admin, host["uuid"]) == total - 2


async def test_host_down_and_back(
    admin: ApiClient, sim: Simulator, caplog: pytest.LogCaptureFixture
) -> None:
    dc = await add_full_datacenter(admin, "down", HOST_IPS[:2], storage=("nfs",))
    down, up = dc["hosts"]
    vms = [await new_vm(admin, dc, f"d{i}", hostUuid=down["uuid"]) for i in range(3)]
    safe = await new_vm(admin, dc, "safe", hostUuid=up["uuid"])
    await _fast_pings(admin)

    await sim.set_alive(down["managementIp"], False)
    await wait_host_status(admin, down["uuid"], "Disconnected", timeout=4)
    for vm in vms:
        unknown = await _wait_state(admin, vm["uuid"], "Unknown")
        assert unknown["hostUuid"] == down["uuid"]
    assert (await get_vm(admin, safe["uuid"]) or {})["state"] == "Running"

    # While it was away one VM died with it, and a VM nobody created appeared.
    machine = sim.machine(down["managementIp"])
    machine.remove_vm(vms[0]["uuid"])
    stranger = "5" * 32
    machine.add_vm(stranger, Vm("Running", 1, GIB))
    with caplog.at_level(logging.WARNING, logger="zstackpy.services.vm.sync"):
        await sim.set_alive(down["managementIp"], True)
        await wait_host_status(admin, down["uuid"], "Connected", timeout=4)
        await _wait_state(admin, vms[0]["uuid"], "Stopped")
        for vm in vms[1:]:
            await _wait_state(admin, vm["uuid"], "Running")

        async def reported() -> bool:
            return stranger in caplog.text

        await wait_for(reported)
    assert await _free_cpu(admin, down["uuid"]) == down["totalCpuCapacity"] - 2 * 2


async def test_db_agrees_with_the_hosts_after_random_deaths(
    admin: ApiClient, sim: Simulator
) -> None:
    dc = await add_full_datacenter(admin, "chaos", HOST_IPS, storage=("nfs",))
    hosts = dc["hosts"]
    vms = [
        await new_vm(admin, dc, f"c{i}", hostUuid=hosts[i % len(hosts)]["uuid"]) for i in range(6)
    ]
    await _fast_pings(admin)
    chooser = random.Random(64)
    for _ in range(3):
        victim = chooser.choice(hosts)
        ip = victim["managementIp"]
        await sim.set_alive(ip, False)
        await wait_host_status(admin, victim["uuid"], "Disconnected", timeout=4)
        on_it = list(machine_vms(sim, ip))
        if on_it and chooser.random() < 0.7:
            sim.machine(ip).remove_vm(chooser.choice(on_it))  # it died with the host
        await sim.set_alive(ip, True)
        await wait_host_status(admin, victim["uuid"], "Connected", timeout=4)

    async def agrees() -> bool:
        for vm in vms:
            row = await get_vm(admin, vm["uuid"])
            assert row is not None
            where = [h for h in hosts if vm["uuid"] in machine_vms(sim, h["managementIp"])]
            if where:
                if (row["state"], row.get("hostUuid")) != ("Running", where[0]["uuid"]):
                    return False
            elif row["state"] != "Stopped":
                return False
        return True

    await wait_for(agrees, timeout=5.0)
    for host in hosts:
        running = len(machine_vms(sim, host["managementIp"]))
        assert await _free_cpu(admin, host["uuid"]) == host["totalCpuCapacity"] - 2 * running


@pytest.fixture
async def shared_sim() -> AsyncIterator[Simulator]:
    """One simulator that outlives node restarts (as real hosts do)."""
    async with Simulator() as simulator:
        yield simulator


async def test_vms_left_mid_operation_are_settled_at_start(
    start_node: Start, shared_sim: Simulator, http: aiohttp.ClientSession
) -> None:
    options = {"simulator_url": shared_sim.base_url, "admin_password": SecretStr(ADMIN_PASSWORD)}
    first = await start_node(**options)
    admin = await login_admin(first, http)
    dc = await add_full_datacenter(admin, "boot", ["10.66.0.1"], storage=("nfs",))
    host = dc["hosts"][0]
    total_cpu = int(host["totalCpuCapacity"])
    rebooting = await new_vm(admin, dc, "rebooting")
    stopping = await new_vm(admin, dc, "stopping")
    starting = await new_vm(admin, dc, "starting", strategy="CreateStopped")
    creating = await new_vm(admin, dc, "creating", strategy="CreateStopped")
    await first.stop()

    # The node died in the middle of four operations; the stop had reached the host.
    host_uuid = host["uuid"]
    shared_sim.machine("10.66.0.1").remove_vm(stopping["uuid"])
    db = Database(first.settings.database_url)
    try:
        async with db.session() as session, session.begin():
            for vm, values in (
                (rebooting, {"state": "Rebooting"}),
                (stopping, {"state": "Stopping"}),
                (starting, {"state": "Starting"}),
                # A create caught after its host reserved the capacity, before it ended.
                (creating, {"state": "Starting", "root_volume_uuid": None, "host_uuid": host_uuid}),
            ):
                await session.execute(
                    update(VmInstanceVO).where(VmInstanceVO.uuid == vm["uuid"]).values(**values)
                )
            await session.execute(
                update(HostVO)
                .where(HostVO.uuid == host_uuid)
                .values(available_cpu_capacity=HostVO.available_cpu_capacity - creating["cpuNum"])
            )
    finally:
        await db.close()

    admin = await login_admin(await start_node(**options), http)
    await _wait_state(admin, rebooting["uuid"], "Running")
    await _wait_state(admin, stopping["uuid"], "Stopped")
    await _wait_state(admin, starting["uuid"], "Stopped")
    await _wait_state(admin, creating["uuid"], "Error")
    await wait_host_status(admin, host["uuid"], "Connected")

    async def books_agree() -> bool:
        return await _free_cpu(admin, host["uuid"]) == total_cpu - 2

    await wait_for(books_agree)

    # The half-made VM is cleaned up as any other: destroyed, then expunged with its disk.
    root = creating["rootVolumeUuid"]
    assert (await admin.delete(f"/vm-instances/{creating['uuid']}")).status == 200
    answer = await admin.action(
        f"/vm-instances/{creating['uuid']}/actions", "expungeVmInstance", {}
    )
    assert answer.status == 200, answer.body
    assert await inventories(admin, "/volumes", f"uuid={root}") == []


# ----- sync on ping (kvm vmSyncOnHostPing) -------------------------------------------------


def _commands(sim: Simulator, ip: str, path: str) -> int:
    return (sim.machine(ip).commands or {}).get(path, 0)


async def _pings_pass(sim: Simulator, ip: str, rounds: int) -> None:
    """Wait until the host answered ``rounds`` more pings."""
    target = _commands(sim, ip, "/host/ping") + rounds

    async def pinged() -> bool:
        return _commands(sim, ip, "/host/ping") >= target

    await wait_for(pinged, timeout=5.0)


@pytest.mark.parametrize("states_on_ping", [True, False], ids=["states-on-ping", "old-agent"])
async def test_pings_sync_vm_states_without_reports(
    admin: ApiClient, sim: Simulator, states_on_ping: bool
) -> None:
    """The VM states ride on the ping's answer (one call per host and round); an agent
    that does not add them (``old-agent``) is asked with ``/vm/vmsync`` after the ping."""
    dc = await add_full_datacenter(admin, "ping", HOST_IPS[:1], storage=("nfs",))
    host = dc["hosts"][0]
    ip, total = host["managementIp"], host["totalCpuCapacity"]
    vm = await new_vm(admin, dc, "guest")
    uuid = vm["uuid"]
    sim.machine(ip).ping_vm_states = states_on_ping
    syncs_before = _commands(sim, ip, "/vm/vmsync")
    await _fast_pings(admin)

    # The guest crashed; no agent report: the next ping's sync sees it.
    guest = sim.machine(ip).vm(uuid)
    assert guest is not None
    guest.state = "Crashed"
    crashed = await _wait_state(admin, uuid, "Crashed")
    assert crashed["hostUuid"] == host["uuid"]
    assert await _free_cpu(admin, host["uuid"]) == total - 2  # still defined there

    # A crashed VM can be stopped: it leaves the host, capacity comes back.
    stop = await vm_action(admin, uuid, "stopVmInstance")
    assert stop.status == 200, stop.body
    assert stop.body["inventory"]["state"] == "Stopped"
    assert uuid not in machine_vms(sim, ip)
    assert await _free_cpu(admin, host["uuid"]) == total

    # Started again, then gone from the host without a word: Stopped by the ping sync.
    start = await vm_action(admin, uuid, "startVmInstance")
    assert start.status == 200, start.body
    sim.machine(ip).remove_vm(uuid)
    stopped = await _wait_state(admin, uuid, "Stopped")
    assert stopped.get("hostUuid") is None
    assert await _free_cpu(admin, host["uuid"]) == total
    separate_syncs = _commands(sim, ip, "/vm/vmsync") - syncs_before
    assert (separate_syncs == 0) if states_on_ping else (separate_syncs > 0)

    # Switched off, pings no longer sync: the database keeps what it believes.
    await set_global_config(admin, "kvm", "vmSyncOnHostPing", False)
    start = await vm_action(admin, uuid, "startVmInstance")
    assert start.status == 200, start.body
    syncs = _commands(sim, ip, "/vm/vmsync")
    sim.machine(ip).remove_vm(uuid)
    await _pings_pass(sim, ip, 5)
    assert (await get_vm(admin, uuid) or {})["state"] == "Running"
    assert _commands(sim, ip, "/vm/vmsync") == syncs


async def test_a_slow_ping_sync_holds_up_no_host_death(admin: ApiClient, sim: Simulator) -> None:
    """A host's VM sync after a ping that takes long (its host died just after answering
    the ping: the sync waits up to the agent timeout) must not stop the pings: another
    host's death is noticed as quickly as ever, and the slow host keeps being pinged."""
    dc = await add_full_datacenter(admin, "slowsync", HOST_IPS[:2], storage=("nfs",))
    slow, other = (h["managementIp"] for h in dc["hosts"])
    await new_vm(admin, dc, "guest", hostUuid=dc["hosts"][0]["uuid"])
    await _fast_pings(admin)
    sim.machine(slow).ping_vm_states = False  # its syncs ask /vm/vmsync after the ping
    sim.set_fault(slow, "/vm/vmsync", delay=30.0, times=1)
    await _pings_pass(sim, slow, 2)  # a sync of it now waits out the delay

    await sim.set_alive(other, False)
    await wait_host_status(admin, dc["hosts"][1]["uuid"], "Disconnected", timeout=4)
    await _pings_pass(sim, slow, 5)
    await sim.set_alive(other, True)
    await wait_host_status(admin, dc["hosts"][1]["uuid"], "Connected", timeout=4)


async def test_ping_sync_reports_an_unknown_vm_once(
    admin: ApiClient, sim: Simulator, caplog: pytest.LogCaptureFixture
) -> None:
    dc = await add_full_datacenter(admin, "stranger", HOST_IPS[:1], storage=("nfs",))
    ip = dc["hosts"][0]["managementIp"]
    await _fast_pings(admin)
    stranger = "6" * 32
    with caplog.at_level(logging.WARNING, logger="zstackpy.services.vm.sync"):
        sim.machine(ip).add_vm(stranger, Vm("Running", 1, GIB))
        await _pings_pass(sim, ip, 5)
    warnings = [r for r in caplog.records if stranger in r.getMessage()]
    assert len(warnings) == 1


async def test_a_correction_older_than_the_vms_last_change_is_dropped(
    node: ManagementNode, admin: ApiClient, sim: Simulator
) -> None:
    dc = await add_full_datacenter(admin, "stale", HOST_IPS[:1], storage=("nfs",))
    host = dc["hosts"][0]
    uuid = (await new_vm(admin, dc, "guest"))["uuid"]
    async with node.context.db.session() as session:
        row = await session.get(VmInstanceVO, uuid)
        assert row is not None
        current = VmRowStamp(
            state=row.state, host_uuid=row.host_uuid, last_op_date=row.last_op_date
        )
    bus = node.context.bus

    # Judged against a row the VM has since left (an older change): dropped.
    older = current.model_copy(update={"last_op_date": current.last_op_date - timedelta(minutes=1)})
    report = ReconcileVmStateMsg(
        vm_instance_uuid=uuid, host_uuid=host["uuid"], state="Stopped", expected=older
    )
    (await bus.call(report)).raise_if_error()
    assert (await get_vm(admin, uuid) or {})["state"] == "Running"

    # Judged against the row as it is: applied.
    report = report.model_copy(update={"expected": current})
    (await bus.call(report)).raise_if_error()
    assert (await get_vm(admin, uuid) or {})["state"] == "Stopped"
