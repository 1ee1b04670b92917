"""Reserving and returning a host's CPU and memory. Both run in the host's work queue on
its owner node (the callers queue them), so a check and its decrement are one step no
other reservation can interleave with: no lock, no over-commit. Concurrent reservations
of one host are served together (core.batching): one read and one write for the burst."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

from sqlalchemy import update

from zstackpy.core.context import NodeContext
from zstackpy.core.db.retry import retrying
from zstackpy.core.errors import ZError
from zstackpy.services.host.messages import HostCapacityReply, HostErr, HostState, HostStatus
from zstackpy.services.host.models import HostVO
from zstackpy.services.host.records import require_host


@dataclass(frozen=True, slots=True)
class CapacityAsk:
    """One reservation of a host's CPU and memory."""

    host_uuid: str
    cpu_num: int
    memory_size: int


async def reserve_many(
    ctx: NodeContext, asks: list[CapacityAsk]
) -> list[HostCapacityReply | ZError]:
    """Serve reservations of one host in arrival order, in one transaction (the host's
    QueueBatcher calls this). Each takes ``cpu_num`` vCPUs and ``memory_size`` bytes, or
    answers HOST.1102 when the host has no longer room for it; all answer HOST.1002 when
    the host is not Enabled and Connected any more."""
    return await retrying(partial(_reserve_many, ctx, asks), "reserving host capacity")


async def _reserve_many(
    ctx: NodeContext, asks: list[CapacityAsk]
) -> list[HostCapacityReply | ZError]:
    host_uuid = asks[0].host_uuid
    async with ctx.db.session() as session, session.begin():
        host = await require_host(session, host_uuid)
        if host.state != HostState.ENABLED or host.status != HostStatus.CONNECTED:
            return [_not_usable(host_uuid, host.state, host.status) for _ in asks]
        cpu, memory = host.available_cpu_capacity, host.available_memory_capacity
        outcomes: list[HostCapacityReply | ZError] = []
        for ask in asks:
            if cpu < ask.cpu_num or memory < ask.memory_size:
                outcomes.append(_exhausted(ask, cpu, memory))
                continue
            cpu, memory = cpu - ask.cpu_num, memory - ask.memory_size
            outcomes.append(HostCapacityReply(available_cpu=cpu, available_memory=memory))
        if (cpu, memory) != (host.available_cpu_capacity, host.available_memory_capacity):
            await session.execute(
                update(HostVO)
                .where(HostVO.uuid == host_uuid)
                .values(available_cpu_capacity=cpu, available_memory_capacity=memory)
            )
    return outcomes


def _not_usable(host_uuid: str, state: str, status: str) -> ZError:
    return ZError(
        HostErr.WRONG_STATE,
        f"host {host_uuid} is {state}/{status}, not Enabled/Connected",
        uuid=host_uuid,
        state=state,
        status=status,
    )


def _exhausted(ask: CapacityAsk, cpu: int, memory: int) -> ZError:
    return ZError(
        HostErr.CAPACITY_EXHAUSTED,
        f"host {ask.host_uuid} has {cpu} vCPUs and {memory} bytes of memory free, not "
        f"{ask.cpu_num} and {ask.memory_size}",
        uuid=ask.host_uuid,
        availableCpu=cpu,
        availableMemory=memory,
        cpuNum=ask.cpu_num,
        memorySize=ask.memory_size,
    )


async def give_back(
    ctx: NodeContext, host_uuid: str, cpu_num: int, memory_size: int
) -> HostCapacityReply:
    """Return what a reservation took; never above the host's total (a reconnect may have
    shrunk it meanwhile)."""
    return await retrying(
        partial(_give_back, ctx, host_uuid, cpu_num, memory_size), "returning host capacity"
    )


async def _give_back(
    ctx: NodeContext, host_uuid: str, cpu_num: int, memory_size: int
) -> HostCapacityReply:
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
