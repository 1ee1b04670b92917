"""A VM left in a transitional state while its node lives on (an operation whose last
write met a database outage) is settled by the node's periodic check: it takes the state
its host reports; a VM whose operation is still running is left to that operation."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy import update

from simulator import Simulator
from tests.e2e.test_vm_lifecycle import get_vm, new_vm, vm_action
from tests.support.api_client import ApiClient
from tests.support.datacenter import add_full_datacenter, set_global_config, wait_for
from zstackpy.core.clock import utcnow
from zstackpy.node.node import ManagementNode
from zstackpy.services.vm.models import VmInstanceVO


async def _set_row(node: ManagementNode, uuid: str, **values: object) -> None:
    assert node.ctx is not None
    async with node.ctx.db.session() as session, session.begin():
        await session.execute(
            update(VmInstanceVO).where(VmInstanceVO.uuid == uuid).values(**values)
        )


async def test_vms_stuck_transitional_take_their_hosts_state(
    admin: ApiClient, sim: Simulator, node: ManagementNode
) -> None:
    dc = await add_full_datacenter(admin, "stuck", ["10.64.9.1"], storage=("nfs",))
    running = await new_vm(admin, dc, "was-starting")
    stopped = await new_vm(admin, dc, "was-stopping")
    answer = await vm_action(admin, stopped["uuid"], "stopVmInstance")
    assert answer.status == 200, answer.body
    long_ago = utcnow() - timedelta(minutes=10)
    # As a node's last write would leave them had the database gone away meanwhile.
    await _set_row(node, running["uuid"], state="Starting", last_op_date=long_ago)
    await _set_row(node, stopped["uuid"], state="Stopping", last_op_date=long_ago)
    await asyncio.sleep(0)
    assert (await get_vm(admin, running["uuid"]) or {})["state"] == "Starting"

    await set_global_config(admin, "vm", "transitionalCheckInterval", 1)

    async def settled() -> bool:
        states = [
            (await get_vm(admin, u) or {}).get("state") for u in (running["uuid"], stopped["uuid"])
        ]
        return states == ["Running", "Stopped"]

    await wait_for(settled, timeout=15)
    assert running["uuid"] in (sim.machine("10.64.9.1").vms or {})
    assert stopped["uuid"] not in (sim.machine("10.64.9.1").vms or {})
