"""VMs left in a transitional state while their owner lives: settled by asking the host.

A node's own restart and a takeover settle the VMs a dead process left mid-operation
(``VmService.node_ready``, ``take_over``). An operation can also end without leaving its
transitional state while the node lives on: its last write met a database outage, or its
task died with an unexpected error. Every ``vm transitionalCheckInterval`` s the owner
looks for VMs transitional for longer than that, with nothing running or waiting in their
queue on this node, and settles each in its queue (``sync.settle``: the host's word wins).
A settle queued behind an operation that started meanwhile finds it stable and does
nothing, so the check never races an operation.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta

from sqlalchemy import select

from zstackpy.core.clock import utcnow
from zstackpy.core.context import NodeContext
from zstackpy.services.vm.configs import TRANSITIONAL_CHECK_INTERVAL
from zstackpy.services.vm.models import VmInstanceVO
from zstackpy.services.vm.states import vm_queue
from zstackpy.services.vm.sync import TRANSITIONAL_STATES

log = logging.getLogger(__name__)

Settle = Callable[[str], Awaitable[None]]  # in the VM's queue


class StuckVmCheck:
    def __init__(self, ctx: NodeContext, settle: Settle) -> None:
        self._ctx = ctx
        self._settle = settle
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._unwatch: Callable[[], None] | None = None
        self.settled = 0  # VMs settled so far (tests, logs)

    def start(self) -> None:
        definition = TRANSITIONAL_CHECK_INTERVAL
        self._unwatch = self._ctx.configs.watch(
            definition.category, definition.name, lambda _o, _n: self._wake.set()
        )
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="vm-stuck-check")

    async def stop(self) -> None:
        if self._unwatch is not None:
            self._unwatch()
            self._unwatch = None
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._interval()):
                    await self._wake.wait()
                continue  # the interval changed: sleep again with the new one
            try:
                await self.run_once()
            except Exception:
                # A database outage: the next round tries again.
                log.exception("checking for VMs stuck in a transitional state failed")

    def _interval(self) -> float:
        return float(self._ctx.configs.value(TRANSITIONAL_CHECK_INTERVAL))

    async def run_once(self) -> int:
        """Settle the stuck VMs this node owns; answers how many were queued."""
        older_than = utcnow() - timedelta(seconds=self._interval())
        async with self._ctx.db.session() as session:
            rows = await session.execute(
                select(VmInstanceVO.uuid).where(
                    VmInstanceVO.state.in_([s.value for s in TRANSITIONAL_STATES]),
                    VmInstanceVO.last_op_date < older_than,
                )
            )
            uuids = list(rows.scalars())
        queued = 0
        for vm_uuid in uuids:
            key = vm_queue(vm_uuid)
            if not self._ctx.ring.is_owner(self._ctx.node_uuid, vm_uuid):
                continue
            if self._ctx.queues.running(key) or self._ctx.queues.depth(key):
                continue  # an operation holds it: it ends in a stable state by itself
            log.warning("VM %s is stuck in a transitional state: settling it", vm_uuid)
            await self._ctx.queues.run(key, self._settle, vm_uuid)
            queued += 1
        self.settled += queued
        return queued
