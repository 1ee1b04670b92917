"""The backup storage ping: each node pings the agents of the backup storage it owns.

Every ``backupStorage ping.interval`` s: a Connected storage whose agent misses
``ping.maxFailure`` pings in a row becomes Disconnected; a Disconnected one is reconnected
(redeploy + connect, which re-reads its capacity) until it answers, with no operator
action. A Connecting one is left alone while its queue here runs the connect; one left
Connecting by a node that died is reconnected by its new owner. Status changes run in the
storage's work queue, so they never race an API operation on it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from sqlalchemy import select

from zstackpy.core.config import ConfigValue
from zstackpy.core.errors import ZError
from zstackpy.services.backup_storage.configs import (
    PING_INTERVAL,
    PING_MAX_FAILURE,
    PING_PARALLELISM,
)
from zstackpy.services.backup_storage.extensions import BackupStorageSpec
from zstackpy.services.backup_storage.messages import BackupStorageStatus, backup_storage_queue
from zstackpy.services.backup_storage.models import BackupStorageVO

if TYPE_CHECKING:
    from zstackpy.core.context import NodeContext
    from zstackpy.services.backup_storage.service import BackupStorageService

log = logging.getLogger(__name__)

MAX_PING_TIMEOUT_S = 10.0


class BackupStoragePinger:
    """Owned by the backup storage service: ``start`` in its start, ``stop`` in its stop."""

    def __init__(self, ctx: NodeContext, service: BackupStorageService) -> None:
        self.ctx = ctx
        self.service = service
        self._failures: dict[str, int] = {}
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._unwatch: Callable[[], None] | None = None

    def start(self) -> None:
        # A shorter interval takes effect at once, not after the long sleep in progress.
        self._unwatch = self.ctx.configs.watch(
            PING_INTERVAL.category, PING_INTERVAL.name, self._interval_changed
        )
        self._task = asyncio.create_task(self._loop(), name="backup-storage:ping")

    async def stop(self) -> None:
        if self._unwatch is not None:
            self._unwatch()
            self._unwatch = None
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def _interval_changed(self, _old: ConfigValue, _new: ConfigValue) -> None:
        self._wake.set()

    async def _loop(self) -> None:
        while True:
            interval = self.ctx.configs.value(PING_INTERVAL)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(interval):
                    await self._wake.wait()
            self._wake.clear()
            try:
                await self.ping_round()
            except Exception:
                # One bad round (database away) must not end the pings for good.
                log.exception("backup storage ping round failed")

    async def ping_round(self) -> None:
        """Ping (or reconnect) every backup storage this node owns, bounded in parallel."""
        async with self.ctx.db.session() as session:
            rows = (
                await session.execute(
                    select(
                        BackupStorageVO.uuid,
                        BackupStorageVO.name,
                        BackupStorageVO.type,
                        BackupStorageVO.url,
                        BackupStorageVO.status,
                    )
                )
            ).all()
        mine = [r for r in rows if self.ctx.ring.is_owner(self.ctx.node_uuid, r.uuid)]
        known = {r.uuid for r in mine}
        self._failures = {u: n for u, n in self._failures.items() if u in known}
        limit = asyncio.Semaphore(self.ctx.configs.value(PING_PARALLELISM))

        async def one(spec: BackupStorageSpec, status: str) -> None:
            async with limit:
                await self._ping_one(spec, status)

        async with asyncio.TaskGroup() as group:
            for r in mine:
                spec = BackupStorageSpec(uuid=r.uuid, name=r.name, type=r.type, url=r.url)
                group.create_task(one(spec, r.status))

    async def _ping_one(self, spec: BackupStorageSpec, status: str) -> None:
        if status == BackupStorageStatus.CONNECTED:
            await self._ping_connected(spec)
        elif status == BackupStorageStatus.DISCONNECTED or self._is_stale(spec.uuid):
            await self._try_reconnect(spec)

    def _is_stale(self, uuid: str) -> bool:
        """Connecting, yet nothing runs in its queue here: the node that was connecting
        it died (this node took it over), so nobody will finish the job."""
        key = backup_storage_queue(uuid)
        return self.ctx.queues.running(key) == 0 and self.ctx.queues.depth(key) == 0

    async def _ping_connected(self, spec: BackupStorageSpec) -> None:
        timeout = min(self.ctx.configs.value(PING_INTERVAL), MAX_PING_TIMEOUT_S)
        try:
            backend = self.service.backend_for(spec.type)
            await backend.ping_backup_storage(spec, timeout)
        except ZError as exc:
            missed = self._failures.get(spec.uuid, 0) + 1
            self._failures[spec.uuid] = missed
            if missed < self.ctx.configs.value(PING_MAX_FAILURE):
                return
            self._failures.pop(spec.uuid, None)
            reason = f"missed {missed} pings: {exc.description}"
            await self.ctx.queues.run(
                backup_storage_queue(spec.uuid), self._disconnect, spec.uuid, reason
            )
            return
        self._failures.pop(spec.uuid, None)

    async def _disconnect(self, uuid: str, reason: str) -> None:
        async with self.ctx.db.session() as session:
            row = await session.get(BackupStorageVO, uuid)
        # Deleted, or reconnected by someone else since the ping: nothing to do.
        if row is not None and row.status == BackupStorageStatus.CONNECTED:
            await self.service.set_status(uuid, BackupStorageStatus.DISCONNECTED, reason)

    async def _try_reconnect(self, spec: BackupStorageSpec) -> None:
        try:
            await self.ctx.queues.run(
                backup_storage_queue(spec.uuid), self._reconnect_if_disconnected, spec.uuid
            )
        except ZError as exc:
            log.debug("backup storage %s still unreachable: %s", spec.uuid, exc)

    async def _reconnect_if_disconnected(self, uuid: str) -> None:
        async with self.ctx.db.session() as session:
            row = await session.get(BackupStorageVO, uuid)
        # Still not Connected now that this job holds the queue (an add that was running
        # when the round began has finished by now).
        if row is not None and row.status != BackupStorageStatus.CONNECTED:
            await self.service.reconnect(uuid, f"ping: reconnecting a {row.status} storage")
