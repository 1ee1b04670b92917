"""A node drained before it stops: it turns not ready, refuses new API jobs with SYS.1010,
and lets the job it runs end (here a VM creation whose agent answers late) instead of
failing it with SYS.1012."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest

from simulator import Simulator
from tests.e2e.conftest import login_admin
from tests.e2e.test_vm_lifecycle import (
    create_vm,
    get_vm,
    machine_vms,
    new_vm,
    vm_action,
    vm_ok,
)
from tests.support.api_client import Answer, ApiClient
from tests.support.datacenter import add_full_datacenter, wait_for
from zstackpy.core.db.group_commit import Prepare, Unit
from zstackpy.core.ids import new_uuid
from zstackpy.node.node import ManagementNode


def _owned_by(asker: ManagementNode, owner: ManagementNode) -> str:
    """A fresh uuid the ring (as ``asker`` sees it) gives to ``owner``."""
    uuid = new_uuid()
    while asker.context.ring.owner(uuid) != owner.uuid:
        uuid = new_uuid()
    return uuid


async def _start_on_a_slow_agent(
    admin: ApiClient, sim: Simulator, ip: str, vm_uuid: str, agent_delay: float
) -> Answer:
    """Start the stopped VM with its host's agent ``agent_delay`` s slow; answers the 202
    once the agent is at work."""
    sim.set_fault(ip, "/vm/start", delay=agent_delay, times=1)
    starts = (sim.machine(ip).commands or {}).get("/vm/start", 0)
    start = await admin.request(
        "PUT", f"/vm-instances/{vm_uuid}/actions", json={"startVmInstance": {}}
    )
    assert start.status == 202, start.body

    async def at_work() -> bool:
        return (sim.machine(ip).commands or {}).get("/vm/start", 0) > starts

    await wait_for(at_work)
    return start


async def test_a_drain_refuses_new_jobs_and_lets_running_ones_end(
    admin: ApiClient, sim: Simulator, node: ManagementNode, http: aiohttp.ClientSession
) -> None:
    dc = await add_full_datacenter(admin, "drain", ["10.64.8.1"], storage=("nfs",))
    sim.set_fault("10.64.8.1", "/vm/start", delay=2.0, times=1)
    body = {
        "name": "slow",
        "imageUuid": dc["image"]["uuid"],
        "instanceOfferingUuid": dc["offering"]["uuid"],
        "l3NetworkUuids": [dc["l3"]["uuid"]],
    }
    started = await admin.request("POST", "/vm-instances", json={"params": body})
    assert started.status == 202, started.body
    await asyncio.sleep(0.5)  # the job waits for the slow agent now

    drain = asyncio.create_task(node.drain(30))
    await asyncio.sleep(0.1)
    refused = await create_vm(admin, dc, "too-late")
    assert refused.status == 503, refused.body
    assert refused.body["error"]["code"] == "SYS.1010"
    assert node.http is not None
    async with http.get(f"http://127.0.0.1:{node.http.port}/health") as resp:
        assert resp.status == 503
        assert (await resp.json())["nodeState"] == "draining"

    assert await drain == 0  # nothing left running
    finished = await admin.finish(started)
    assert finished.status == 200, finished.body
    assert finished.body["inventory"]["state"] == "Running"


async def test_a_job_still_being_recorded_when_the_drain_begins_gets_to_end(
    admin: ApiClient, node: ManagementNode, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A submit past the accepting check whose job row is still being written when the
    drain begins: its job was accepted, so the drain waits for it too (it used to look only
    at the jobs already started, and the stop that follows failed this one with SYS.1012)."""
    dc = await add_full_datacenter(admin, "drain-race", ["10.64.8.2"], storage=("nfs",))
    db = node.context.db
    real_write = db.write
    recording, release = asyncio.Event(), asyncio.Event()

    async def held_write(unit: Unit[Any], *, prepare: Prepare | None = None) -> Any:
        if "_record_and_start" in unit.__qualname__ and not recording.is_set():
            recording.set()  # the job's row: hold it until the drain has begun
            await release.wait()
        return await real_write(unit, prepare=prepare)

    monkeypatch.setattr(db, "write", held_write)
    body = {
        "name": "accepted",
        "imageUuid": dc["image"]["uuid"],
        "instanceOfferingUuid": dc["offering"]["uuid"],
        "l3NetworkUuids": [dc["l3"]["uuid"]],
    }
    create = asyncio.create_task(admin.request("POST", "/vm-instances", json={"params": body}))
    await asyncio.wait_for(recording.wait(), 30)
    drain = asyncio.create_task(node.drain(30))
    await asyncio.sleep(0.2)
    assert not drain.done()  # the accepted job is not recorded yet, and is waited for
    release.set()
    started = await create
    assert started.status == 202, started.body
    assert await drain == 0
    finished = await admin.finish(started)
    assert finished.status == 200, finished.body
    assert finished.body["inventory"]["state"] == "Running"


async def test_the_drain_api_refuses_a_node_whose_life_is_not_its_own(
    admin: ApiClient, node: ManagementNode
) -> None:
    """In-process (tests, embedding) the program around the node decides when it stops:
    the API says so instead of pretending to drain."""
    path = f"/management-nodes/{node.uuid}/actions"
    refused = await admin.action(path, "drainManagementNode", {})
    assert refused.error["code"] == "SYS.1010", refused.body
    assert "cannot be stopped from the API" in refused.error["description"]
    assert str(node.state) == "ready"


async def test_a_drain_lets_the_work_it_does_for_other_nodes_end(
    two_nodes: tuple[ManagementNode, ManagementNode],
    shared_sim: Simulator,
    http: aiohttp.ClientSession,
) -> None:
    """A job of the first node whose VM the second owns: the second runs the start for it.
    Draining the second (which has no job of its own) waits for that handler before its
    bus stops, instead of cutting it off (the job used to fail, the guest left behind);
    a call that comes meanwhile is refused at once with SYS.1012."""
    first, second = two_nodes
    admin = await login_admin(first, http)
    ip = "10.64.8.3"
    dc = await add_full_datacenter(admin, "drain-others", [ip], storage=("nfs",))
    vm_uuid = _owned_by(first, second)
    other = _owned_by(first, second)
    await new_vm(admin, dc, "theirs", resourceUuid=vm_uuid)
    await new_vm(admin, dc, "also-theirs", resourceUuid=other)
    await vm_ok(admin, vm_uuid, "stopVmInstance")
    start = await _start_on_a_slow_agent(admin, shared_sim, ip, vm_uuid, 2.0)
    assert await second.drain(30) == 0  # none of its own; it waited for the first's
    refused = await vm_action(admin, other, "rebootVmInstance")
    assert refused.status == 503, refused.body
    assert refused.body["error"]["code"] == "SYS.1012"
    await second.stop()
    finished = await admin.finish(start)
    assert finished.status == 200, finished.body
    assert finished.body["inventory"]["state"] == "Running"
    assert machine_vms(shared_sim, ip)[vm_uuid] == "Running"


async def test_work_for_other_nodes_still_running_at_the_drain_timeout_is_answered_and_settled(
    two_nodes: tuple[ManagementNode, ManagementNode],
    shared_sim: Simulator,
    http: aiohttp.ClientSession,
) -> None:
    """The second node runs a VM start for the first's job and its agent is slow; the drain
    ends first. The job hears at once (SYS.1012, outcome unknown) instead of waiting for a
    handler the stop would cut off without a word, and once the drained node has left,
    the first, the VM's new owner, settles the VM to what its host runs (Running)."""
    first, second = two_nodes
    admin = await login_admin(first, http)
    ip = "10.64.8.4"
    dc = await add_full_datacenter(admin, "drain-cut", [ip], storage=("nfs",))
    vm_uuid = _owned_by(first, second)
    await new_vm(admin, dc, "cut", resourceUuid=vm_uuid)
    await vm_ok(admin, vm_uuid, "stopVmInstance")
    agent_delay = 3.0
    start = await _start_on_a_slow_agent(admin, shared_sim, ip, vm_uuid, agent_delay)
    sent_at = asyncio.get_running_loop().time()
    assert await second.drain(0.3) == 0
    failed = await admin.finish(start)
    answered_in = asyncio.get_running_loop().time() - sent_at

    assert failed.status == 503, failed.body
    assert failed.body["error"]["code"] == "SYS.1012", failed.body
    assert "outcome is unknown" in failed.body["error"]["description"]
    assert answered_in < agent_delay  # not the agent's answer: the drain's

    async def guest_running() -> bool:
        return machine_vms(shared_sim, ip).get(vm_uuid) == "Running"

    await wait_for(guest_running)  # the host acted on the start anyway
    await second.stop()

    # The cut-off start rolled back (Stopped) while the host went on to run the guest; the
    # new owner of the VM and its host brings the database to what the host runs.
    async def settled() -> bool:
        vm = await get_vm(admin, vm_uuid)
        return vm is not None and vm["state"] == machine_vms(shared_sim, ip).get(vm_uuid)

    await wait_for(settled)
