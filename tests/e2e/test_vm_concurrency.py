"""Concurrent requests on VMs over REST: every call is answered (done, or VM.1001 naming
the state it met), and in the end the database, the hosts' books and the simulated
machines agree."""

from __future__ import annotations

import asyncio
import random

from simulator import Simulator
from tests.e2e.test_vm_lifecycle import (
    books,
    create_vm,
    get_vm,
    inventories,
    machine_vms,
    new_vm,
    vm_action,
    warm_image_cache,
)
from tests.support.api_client import ApiClient
from tests.support.datacenter import GIB, add_full_datacenter

HOST_IPS = ["10.62.0.1", "10.62.0.2"]
ACTIONS = ("startVmInstance", "stopVmInstance", "rebootVmInstance")


async def test_100_concurrent_start_stop_reboot_on_one_vm(admin: ApiClient, sim: Simulator) -> None:
    dc = await add_full_datacenter(admin, "conc", HOST_IPS[:1], storage=("nfs",))
    vm = await new_vm(admin, dc, "busy")
    uuid = vm["uuid"]
    chooser = random.Random(6)  # a fixed mix, so a failure replays
    actions = [chooser.choice(ACTIONS) for _ in range(100)]
    # 100 jobs polled every 20 ms would be 5,000 polls/s on the node's one loop.
    admin.poll_interval = 0.2

    answers = await asyncio.gather(*(vm_action(admin, uuid, a) for a in actions))

    done = 0
    for action, answer in zip(actions, answers, strict=True):
        if answer.status == 200:
            done += 1
            continue
        assert answer.status == 409, (action, answer.body)
        error = answer.error
        assert error["code"] == "VM.1001", error
        assert error["details"]["state"] in ("Running", "Stopped"), error
    assert done >= 2  # at least one stop and one start got their turn
    final = await get_vm(admin, uuid)
    assert final is not None
    ip = HOST_IPS[0]
    [host] = await inventories(admin, "/hosts")
    if final["state"] == "Running":
        assert machine_vms(sim, ip) == {uuid: "Running"}
        assert final["hostUuid"] == host["uuid"]
        assert host["availableCpuCapacity"] == host["totalCpuCapacity"] - 2
    else:
        assert final["state"] == "Stopped"
        assert machine_vms(sim, ip) == {}
        assert host["availableCpuCapacity"] == host["totalCpuCapacity"]


async def test_creates_racing_for_the_last_capacity(admin: ApiClient, sim: Simulator) -> None:
    for ip in HOST_IPS:
        # 1 vCPU x 10 over-provisioning and 9 GiB (8 after the reserved 1 GiB): room for
        # four 2-GiB VMs per host.
        sim.declare(ip, cpu_num=1, memory_size=9 * GIB)
    dc = await add_full_datacenter(
        admin, "race", HOST_IPS, storage=("nfs",), cpu_num=1, memory_size=2 * GIB
    )
    await warm_image_cache(admin, dc)
    before = await books(admin)

    answers = await asyncio.gather(*(create_vm(admin, dc, f"r{i}") for i in range(12)))
    created = [a.body["inventory"] for a in answers if a.status == 200]
    refused = [a.error["code"] for a in answers if a.status != 200]
    assert len(created) == 8, refused
    assert set(refused) <= {"HOST.1101", "HOST.1102"}, refused
    running: dict[str, str] = {}
    for ip in HOST_IPS:
        running.update(machine_vms(sim, ip))
    assert running == {vm["uuid"]: "Running" for vm in created}
    for host in await inventories(admin, "/hosts"):
        assert host["availableMemoryCapacity"] == 0
    assert len({vm["vmNics"][0]["ip"] for vm in created}) == 8
    for vm in created:
        assert (await admin.delete(f"/vm-instances/{vm['uuid']}")).status == 200
        assert (await vm_action(admin, vm["uuid"], "expungeVmInstance")).status == 200
    assert await books(admin) == before
