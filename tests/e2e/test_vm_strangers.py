"""Guests a host runs that the database does not know (orphans of a creation whose
rollback could not reach the host): with ``vm cleanUpStrangeVms`` the node destroys one the
VM syncs kept seeing for ``vm strangeVmGracePeriod`` s, with the agent's destroy command;
a VM being created is never touched; with the clean-up off (the default) the orphan stays
and is logged once. Counted in ``/metrics``."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import pytest

from simulator import Simulator
from simulator.machine import Vm
from tests.e2e.test_metrics_health import _metrics, _value
from tests.e2e.test_vm_lifecycle import create_vm, get_vm, machine_vms, new_vm
from tests.support.api_client import ApiClient
from tests.support.datacenter import GIB, add_full_datacenter, set_global_config, wait_for
from zstackpy.core.ids import new_uuid
from zstackpy.node.node import ManagementNode
from zstackpy.services.vm.messages import DestroyStrangeVmMsg, DestroyStrangeVmReply

HOST_IP = "10.66.0.1"
STRANGERS_LOG = "zstackpy.services.vm.strangers"


async def _fast_pings(admin: ApiClient) -> None:
    """A ping (and its VM sync) every 0.1 s."""
    await set_global_config(admin, "host", "ping.timeout", 0.5)
    await set_global_config(admin, "host", "ping.interval", 0.1)


def _destroys(sim: Simulator, ip: str) -> int:
    return (sim.machine(ip).commands or {}).get("/vm/destroy", 0)


async def _figure(node: ManagementNode, name: str) -> float:
    _, samples = await _metrics(node)
    return _value(samples, name)


async def test_an_orphan_guest_is_destroyed_after_the_grace_period(
    node: ManagementNode, admin: ApiClient, sim: Simulator, caplog: pytest.LogCaptureFixture
) -> None:
    dc = await add_full_datacenter(admin, "orphan", [HOST_IP], storage=("nfs",))
    known = await new_vm(admin, dc, "known")
    await set_global_config(admin, "vm", "cleanUpStrangeVms", "true")
    await set_global_config(admin, "vm", "strangeVmGracePeriod", 2)
    await _fast_pings(admin)
    destroys = _destroys(sim, HOST_IP)
    orphan = "7" * 32

    with caplog.at_level(logging.INFO, logger=STRANGERS_LOG):
        sim.machine(HOST_IP).add_vm(orphan, Vm("Running", 1, GIB))
        seen_at = time.monotonic()

        async def gone() -> bool:
            return orphan not in machine_vms(sim, HOST_IP)

        await wait_for(gone, timeout=10.0)
        # Not before the grace period (syncs saw it every 0.1 s all along).
        assert time.monotonic() - seen_at >= 2.0
    # Through the agent's destroy command, once.
    assert _destroys(sim, HOST_IP) == destroys + 1
    assert any(f"destroyed VM {orphan}" in r.getMessage() for r in caplog.records)
    assert await _figure(node, "zstack_vm_strangers_destroyed_total") == 1
    assert await _figure(node, "zstack_vm_strangers") == 0
    # The VM the database knows was left running.
    assert (await get_vm(admin, known["uuid"]) or {})["state"] == "Running"
    assert known["uuid"] in machine_vms(sim, HOST_IP)


async def test_a_vm_being_created_is_never_destroyed(
    node: ManagementNode, admin: ApiClient, sim: Simulator
) -> None:
    dc = await add_full_datacenter(admin, "eager", [HOST_IP], storage=("nfs",))
    await set_global_config(admin, "vm", "cleanUpStrangeVms", "true")
    await set_global_config(admin, "vm", "strangeVmGracePeriod", 1)
    await _fast_pings(admin)
    # Each start takes longer than the grace period, pinged and synced all the while.
    sim.set_fault(HOST_IP, "/vm/start", delay=2.5)
    uuids = [new_uuid() for _ in range(3)]
    creations = [
        asyncio.create_task(create_vm(admin, dc, f"slow{i}", resourceUuid=uuid))
        for i, uuid in enumerate(uuids)
    ]

    async def rows_written() -> bool:
        return all([await get_vm(admin, uuid) for uuid in uuids])

    await wait_for(rows_written)
    # An explicit clean-up request for a VM mid-creation waits for the creation (the VM's
    # queue), then finds it known and leaves it.
    reply = await node.context.bus.call(
        DestroyStrangeVmMsg(vm_instance_uuid=uuids[0], host_uuid=dc["hosts"][0]["uuid"])
    )
    assert isinstance(reply, DestroyStrangeVmReply)
    assert reply.success
    assert not reply.destroyed
    answers = await asyncio.gather(*creations)
    assert [a.status for a in answers] == [200] * 3, [a.body for a in answers]
    sim.clear_faults(HOST_IP)
    await asyncio.sleep(1.5)  # syncs past the grace period
    running = machine_vms(sim, HOST_IP)
    for uuid in uuids:
        vm: dict[str, Any] = await get_vm(admin, uuid) or {}
        assert vm["state"] == "Running"
        assert running.get(uuid) == "Running"
    assert await _figure(node, "zstack_vm_strangers_destroyed_total") == 0


async def test_with_the_clean_up_off_an_orphan_stays_and_is_logged_once(
    node: ManagementNode, admin: ApiClient, sim: Simulator, caplog: pytest.LogCaptureFixture
) -> None:
    dc = await add_full_datacenter(admin, "off", [HOST_IP], storage=("nfs",))
    assert dc["hosts"]
    await set_global_config(admin, "vm", "strangeVmGracePeriod", 1)
    await _fast_pings(admin)
    destroys = _destroys(sim, HOST_IP)
    orphan = "8" * 32
    with caplog.at_level(logging.INFO, logger=STRANGERS_LOG):
        sim.machine(HOST_IP).add_vm(orphan, Vm("Running", 1, GIB))

        async def counted() -> bool:
            return await _figure(node, "zstack_vm_strangers") == 1

        await wait_for(counted)
        await asyncio.sleep(2.5)  # syncs well past the grace period
    assert orphan in machine_vms(sim, HOST_IP)
    assert _destroys(sim, HOST_IP) == destroys
    warnings = [r.getMessage() for r in caplog.records if orphan in r.getMessage()]
    assert len(warnings) == 1
    assert "vm.cleanUpStrangeVms is off" in warnings[0]
    assert await _figure(node, "zstack_vm_strangers_destroyed_total") == 0


async def test_a_destroyed_vm_whose_guest_runs_on_is_destroyed_on_its_host(
    node: ManagementNode, admin: ApiClient, sim: Simulator
) -> None:
    """A destroy whose command never reached the host (held while the database was away)
    left the VM Destroyed in the database and its guest running: the same clean-up."""
    dc = await add_full_datacenter(admin, "ghost", [HOST_IP], storage=("nfs",))
    vm = await new_vm(admin, dc, "ghost")
    answer = await admin.finish(await admin.request("DELETE", f"/vm-instances/{vm['uuid']}"))
    assert answer.status == 200, answer.body
    assert (await get_vm(admin, vm["uuid"]) or {})["state"] == "Destroyed"
    await set_global_config(admin, "vm", "cleanUpStrangeVms", "true")
    await set_global_config(admin, "vm", "strangeVmGracePeriod", 1)
    await _fast_pings(admin)
    sim.machine(HOST_IP).add_vm(vm["uuid"], Vm("Running", 1, GIB))

    async def gone() -> bool:
        return vm["uuid"] not in machine_vms(sim, HOST_IP)

    await wait_for(gone, timeout=10.0)
    assert (await get_vm(admin, vm["uuid"]) or {})["state"] == "Destroyed"  # recoverable
    assert await _figure(node, "zstack_vm_strangers_destroyed_total") == 1
