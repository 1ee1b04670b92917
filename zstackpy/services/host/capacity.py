"""Reserving and returning a host's CPU and memory. Both run in the host's work queue on
its owner node (the callers queue them), so a check and its decrement are one step no
other reservation can interleave with: no lock, no over-commit."""

from __future__ import annotations

from sqlalchemy import update

from zstackpy.core.context import NodeContext
from zstackpy.core.errors import ZError
from zstackpy.services.host.messages import HostCapacityReply, HostErr, HostState, HostStatus
from zstackpy.services.host.models import HostVO
from zstackpy.services.host.records import require_host


async def reserve(
    ctx: NodeContext, host_uuid: str, cpu_num: int, memory_size: int
) -> HostCapacityReply:
    """Take ``cpu_num`` vCPUs and ``memory_size`` bytes. HOST.1002 when the host is not
    Enabled and Connected any more; HOST.1102 when it has no longer room."""
    async with ctx.db.session() as session, session.begin():
        host = await require_host(session, host_uuid)
        if host.state != HostState.ENABLED or host.status != HostStatus.CONNECTED:
            raise ZError(
                HostErr.WRONG_STATE,
                f"host {host_uuid} is {host.state}/{host.status}, not Enabled/Connected",
                uuid=host_uuid,
                state=host.state,
                status=host.status,
            )
        if host.available_cpu_capacity < cpu_num or host.available_memory_capacity < memory_size:
            raise ZError(
                HostErr.CAPACITY_EXHAUSTED,
                f"host {host_uuid} has {host.available_cpu_capacity} vCPUs and "
                f"{host.available_memory_capacity} bytes of memory free, not {cpu_num} and "
                f"{memory_size}",
                uuid=host_uuid,
                availableCpu=host.available_cpu_capacity,
                availableMemory=host.available_memory_capacity,
                cpuNum=cpu_num,
                memorySize=memory_size,
            )
        cpu = host.available_cpu_capacity - cpu_num
        memory = host.available_memory_capacity - memory_size
        await session.execute(
            update(HostVO)
            .where(HostVO.uuid == host_uuid)
            .values(available_cpu_capacity=cpu, available_memory_capacity=memory)
        )
    return HostCapacityReply(available_cpu=cpu, available_memory=memory)


async def give_back(
    ctx: NodeContext, host_uuid: str, cpu_num: int, memory_size: int
) -> HostCapacityReply:
    """Return what a reservation took; never above the host's total (a reconnect may have
    shrunk it meanwhile)."""
    async with ctx.db.session() as session, session.begin():
        host = await require_host(session, host_uuid)
        cpu = min(host.total_cpu_capacity, host.available_cpu_capacity + cpu_num)
        memory = min(host.total_memory_capacity, host.available_memory_capacity + memory_size)
        await session.execute(
            update(HostVO)
            .where(HostVO.uuid == host_uuid)
            .values(available_cpu_capacity=cpu, available_memory_capacity=memory)
        )
    return HostCapacityReply(available_cpu=cpu, available_memory=memory)
