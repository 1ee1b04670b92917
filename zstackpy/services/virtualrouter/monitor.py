"""The routers' monitor: every ``virtualRouter ping.interval`` s the node pings the agent
of each router whose guest L3 network it owns. A router that does not answer, whose VM
is not Running, or that is left Disconnected, is brought back in its queue (its VM
started again, re-created if that fails, and sent everything it serves). A router whose
queue is busy is skipped: what runs there ends with it Connected or Disconnected."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from sqlalchemy import select

from zstackpy.core.context import NodeContext
from zstackpy.core.errors import ZError
from zstackpy.services.virtualrouter.configs import PING_INTERVAL
from zstackpy.services.virtualrouter.messages import ApplianceStatus
from zstackpy.services.virtualrouter.models import ApplianceVmVO
from zstackpy.services.virtualrouter.routers import answers, router_queue, view_of
from zstackpy.services.vm.messages import VmState
from zstackpy.services.vm.models import VmInstanceVO

log = logging.getLogger(__name__)


def ping_timeout(ctx: NodeContext) -> float:
    return min(10.0, float(ctx.configs.value(PING_INTERVAL)))


Recover = Callable[[str], Awaitable[None]]  # guest L3 uuid; queues the work itself


class RouterMonitor:
    def __init__(self, ctx: NodeContext, recover: Recover) -> None:
        self._ctx = ctx
        self._recover = recover
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._recovering: dict[str, asyncio.Task[None]] = {}
        self._unwatch: Callable[[], None] | None = None

    def start(self) -> None:
        self._unwatch = self._ctx.configs.watch(
            PING_INTERVAL.category, PING_INTERVAL.name, lambda _o, _n: self._wake.set()
        )
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="virtual-router-monitor")

    async def stop(self) -> None:
        if self._unwatch is not None:
            self._unwatch()
            self._unwatch = None
        tasks = [t for t in (self._task, *self._recovering.values()) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._task = None
        self._recovering.clear()

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(float(self._ctx.configs.value(PING_INTERVAL))):
                    await self._wake.wait()
                continue  # the interval changed: sleep again with the new one
            try:
                await self.run_once()
            except Exception:
                log.exception("checking the virtual routers failed")

    async def run_once(self) -> None:
        async with self._ctx.db.session() as session:
            rows = (
                await session.execute(
                    select(ApplianceVmVO, VmInstanceVO.state).join(
                        VmInstanceVO, VmInstanceVO.uuid == ApplianceVmVO.uuid
                    )
                )
            ).all()
        for record, state in rows:
            l3_uuid = record.guest_l3_network_uuid
            key = router_queue(l3_uuid)
            if not self._ctx.ring.is_owner(self._ctx.node_uuid, l3_uuid):
                continue
            if self._ctx.queues.running(key) or self._ctx.queues.depth(key):
                continue
            if l3_uuid in self._recovering:
                continue
            if await self._healthy(record, state):
                continue
            # Looked at again in its queue, where it is marked Disconnected if still down.
            task = asyncio.create_task(self._bring_back(l3_uuid), name=f"vr-recover:{l3_uuid}")
            self._recovering[l3_uuid] = task

    async def _healthy(self, record: ApplianceVmVO, state: str) -> bool:
        if record.status != ApplianceStatus.CONNECTED or state != VmState.RUNNING:
            return False
        router = await view_of(self._ctx, record)
        if router is None:
            return True  # a router missing a network is not the monitor's to fix
        return await answers(self._ctx, router, ping_timeout(self._ctx))

    async def _bring_back(self, l3_uuid: str) -> None:
        try:
            await self._recover(l3_uuid)
        except ZError as exc:
            log.warning("virtual router of L3 %s is still down: %s", l3_uuid, exc.description)
        except Exception:
            log.exception("bringing back the virtual router of L3 %s failed", l3_uuid)
        finally:
            self._recovering.pop(l3_uuid, None)
