"""Work queues instead of locks: per-signature FIFO queues with bounded parallelism.

``await queues.run(QueueKey("vm", vm_uuid), fn, *args)`` runs ``fn(*args)`` in the
caller's own task once the queue grants a slot. Jobs with the same signature are granted
slots in FIFO order, at most ``level`` at a time. There is no worker task: a waiting job
costs one small record plus one future, so 100k waiting jobs are normal.

Invariant the code relies on: a live (not yet granted) waiter exists only while every slot
of its queue is taken. A finished job hands its slot straight to the next live waiter
instead of freeing it, so a newcomer can never overtake a waiter.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import NamedTuple, TypeVar, TypeVarTuple

from zstackpy.core.errors import KernelErr, ZError

__all__ = ["QueueKey", "QueueKindStats", "WorkQueues"]

log = logging.getLogger(__name__)

T = TypeVar("T")
Ts = TypeVarTuple("Ts")

# Rebuild a waiter deque once cancelled entries outnumber live ones by this much, so a
# burst of cancellations deep in a long queue cannot pin their records until they reach
# the head.
_COMPACT_MIN = 64


class QueueKey(NamedTuple):
    """A queue signature: ``str(QueueKey("vm", u)) == "vm:<u>"``; ``kind`` groups metrics."""

    kind: str
    uuid: str

    def __str__(self) -> str:
        return f"{self.kind}:{self.uuid}"


@dataclass(frozen=True, slots=True)
class QueueKindStats:
    """Metrics of all queues of one kind (the signature part before ``:``).

    ``queues``, ``waiting`` and ``running`` are current values; the others are totals since
    the ``WorkQueues`` was created. ``failed`` counts jobs whose ``fn`` raised (including
    cancellation while running); ``canceled`` counts jobs that left while waiting;
    ``refused`` counts ``max_pending`` refusals; ``granted`` counts slots given (what
    ``total_wait_s`` is the sum over). Wait time runs from ``run()`` to the grant.
    """

    queues: int = 0
    waiting: int = 0
    running: int = 0
    completed: int = 0
    failed: int = 0
    canceled: int = 0
    refused: int = 0
    granted: int = 0
    total_wait_s: float = 0.0
    max_wait_s: float = 0.0
    total_run_s: float = 0.0


class _KindCounters:
    __slots__ = (
        "canceled",
        "completed",
        "failed",
        "granted",
        "max_wait_s",
        "queues",
        "refused",
        "running",
        "total_run_s",
        "total_wait_s",
        "waiting",
    )

    def __init__(self) -> None:
        self.queues = self.waiting = self.running = 0
        self.completed = self.failed = self.canceled = self.refused = self.granted = 0
        self.total_wait_s = self.max_wait_s = self.total_run_s = 0.0

    def freeze(self) -> QueueKindStats:
        return QueueKindStats(**{name: getattr(self, name) for name in self.__slots__})

    def waited(self, seconds: float) -> None:
        self.granted += 1
        self.total_wait_s += seconds
        if seconds > self.max_wait_s:
            self.max_wait_s = seconds


class _Job:
    """One call of ``run``: first a waiter (``fut`` pending), then a slot holder."""

    __slots__ = ("canceled", "fut", "queued_at", "task")

    def __init__(self, task: asyncio.Task[object]) -> None:
        self.task = task
        self.fut: asyncio.Future[None] | None = None
        self.queued_at = 0.0
        # set by cancel(running=True): tells run() the CancelledError is ours to convert
        self.canceled = False


class _Queue:
    __slots__ = ("active", "key", "level", "running", "stats", "waiters", "waiting")

    def __init__(self, key: str, level: int, stats: _KindCounters) -> None:
        self.key = key
        self.level = level
        self.stats = stats
        self.running = 0  # slots taken, including granted waiters that have not resumed
        self.waiting = 0  # live waiters; ``waiters`` may also hold finished (stale) ones
        self.waiters: deque[_Job] = deque()
        self.active: set[_Job] = set()


def _kind_of(key: str) -> str:
    return key.partition(":")[0]


def _current_task() -> asyncio.Task[object] | None:
    try:
        return asyncio.current_task()
    except RuntimeError:  # called from outside the loop
        return None


class WorkQueues:
    """All work queues of a node. Queues are created on demand and dropped when idle.

    A queue's ``level`` (parallelism) is fixed by the ``run`` call that creates it; later
    calls' ``level`` is ignored until the queue drains and is dropped, so callers of one
    signature should agree on it.
    """

    def __init__(self) -> None:
        self._queues: dict[str, _Queue] = {}
        self._kinds: dict[str, _KindCounters] = {}

    def __len__(self) -> int:
        return len(self._queues)

    async def run(
        self,
        signature: str | QueueKey,
        fn: Callable[[*Ts], Awaitable[T]],
        *args: *Ts,
        level: int = 1,
        max_pending: int | None = None,
    ) -> T:
        """Run ``fn(*args)`` in the calling task once ``signature``'s queue grants a slot.

        Returns what ``fn`` returns and raises what it raises; neither affects other jobs.
        Raises ``ZError(QUEUE_FULL)`` without queueing when ``max_pending`` jobs already
        wait, and ``ZError(QUEUE_CANCELED)`` when ``cancel()`` removes this job. A cancelled
        caller leaves the queue (or frees its slot) and gets ``CancelledError`` as usual.
        """
        if level < 1:
            raise ValueError(f"level must be >= 1, got {level}")
        key = str(signature)
        q = self._queues.get(key)
        if q is None:
            q = self._create(key, signature, level)
        key = q.key  # drop our fresh copy: this frame lives as long as the job waits
        task = asyncio.current_task()
        if task is None:
            raise RuntimeError("WorkQueues.run must be awaited inside a task")
        job = _Job(task)
        stats = q.stats
        loop = asyncio.get_running_loop()
        if q.running < q.level:
            q.running += 1
            stats.running += 1
            q.active.add(job)
            stats.waited(0.0)
        else:
            if max_pending is not None and q.waiting >= max_pending:
                stats.refused += 1
                raise ZError(
                    KernelErr.QUEUE_FULL,
                    f"work queue {key} is full",
                    signature=key,
                    waiting=q.waiting,
                    max_pending=max_pending,
                )
            await self._wait(q, job, loop)
        started = loop.time()
        try:
            result = await fn(*args)
        except asyncio.CancelledError:
            stats.failed += 1
            if job.canceled and task.uncancel() == 0:
                raise self._canceled(key, running=True) from None
            raise
        except BaseException:
            stats.failed += 1
            raise
        else:
            stats.completed += 1
            if job.canceled:
                # fn swallowed our cancel: undo it so the caller's later awaits are clean
                task.uncancel()
            return result
        finally:
            stats.total_run_s += loop.time() - started
            self._release(q, job)

    async def _wait(self, q: _Queue, job: _Job, loop: asyncio.AbstractEventLoop) -> None:
        """Park ``job`` until it owns a slot; on any exit without a slot, leave no trace."""
        fut: asyncio.Future[None] = loop.create_future()
        job.fut = fut
        job.queued_at = loop.time()
        q.waiters.append(job)
        q.waiting += 1
        q.stats.waiting += 1
        try:
            await fut
        except asyncio.CancelledError:
            if fut.cancelled():
                # still waiting: counters are ours to fix, the stale record is skipped later
                q.waiting -= 1
                q.stats.waiting -= 1
                q.stats.canceled += 1
                self._compact(q)
                self._drop_if_idle(q)
                raise
            if fut.exception() is not None:
                raise  # cancel() already removed us; our own cancellation wins
            # Granted a slot but cancelled before resuming: pass the slot on, or the
            # queue would stall with a slot nobody uses.
            self._release(q, job)
            if job.canceled and job.task.uncancel() == 0:
                q.stats.canceled += 1
                raise self._canceled(q.key, running=True) from None
            q.stats.canceled += 1
            raise

    def _release(self, q: _Queue, job: _Job) -> None:
        """Give ``job``'s slot to the oldest live waiter, or free it."""
        q.active.discard(job)
        waiters = q.waiters
        while waiters:
            nxt = waiters.popleft()
            fut = nxt.fut
            if fut is None or fut.done():
                continue  # cancelled while waiting; it fixed the counters itself
            fut.set_result(None)
            q.waiting -= 1
            q.stats.waiting -= 1
            q.stats.waited(fut.get_loop().time() - nxt.queued_at)
            q.active.add(nxt)
            return
        q.running -= 1
        q.stats.running -= 1
        self._drop_if_idle(q)

    def cancel(self, signature: str | QueueKey, *, running: bool = False) -> int:
        """Fail every waiting job of ``signature`` with ``ZError(QUEUE_CANCELED)``.

        With ``running=True`` also cancel the tasks running its jobs; their callers get
        ``ZError(QUEUE_CANCELED)`` too, unless their task was also cancelled by someone
        else. Returns how many jobs were cancelled.
        """
        key = str(signature)
        q = self._queues.get(key)
        if q is None:
            return 0
        count = 0
        for job in q.waiters:
            if job.fut is not None and not job.fut.done():
                job.fut.set_exception(self._canceled(key, running=False))
                count += 1
        q.waiters.clear()
        q.waiting -= count
        q.stats.waiting -= count
        q.stats.canceled += count
        if running:
            me = _current_task()
            for job in list(q.active):
                # cancelling ourselves could not be undone before our caller's next await
                if not job.canceled and job.task is not me:
                    job.canceled = True
                    job.task.cancel(f"work queue {key} canceled")
                    count += 1
        self._drop_if_idle(q)
        return count

    def depth(self, signature: str | QueueKey) -> int:
        """How many jobs of ``signature`` are waiting (not running)."""
        q = self._queues.get(str(signature))
        return 0 if q is None else q.waiting

    def running(self, signature: str | QueueKey) -> int:
        """How many jobs of ``signature`` hold a slot."""
        q = self._queues.get(str(signature))
        return 0 if q is None else q.running

    def snapshot(self) -> dict[str, QueueKindStats]:
        """Current metrics per queue kind; O(number of kinds)."""
        return {kind: counters.freeze() for kind, counters in self._kinds.items()}

    def _create(self, key: str, signature: str | QueueKey, level: int) -> _Queue:
        kind = signature.kind if isinstance(signature, QueueKey) else _kind_of(key)
        stats = self._kinds.get(kind)
        if stats is None:
            stats = self._kinds[kind] = _KindCounters()
        q = self._queues[key] = _Queue(key, level, stats)
        stats.queues += 1
        return q

    def _drop_if_idle(self, q: _Queue) -> None:
        if q.running == 0 and q.waiting == 0 and self._queues.get(q.key) is q:
            del self._queues[q.key]
            q.stats.queues -= 1

    @staticmethod
    def _compact(q: _Queue) -> None:
        if len(q.waiters) > _COMPACT_MIN and len(q.waiters) > 2 * q.waiting:
            q.waiters = deque(j for j in q.waiters if j.fut is not None and not j.fut.done())

    @staticmethod
    def _canceled(key: str, *, running: bool) -> ZError:
        return ZError(
            KernelErr.QUEUE_CANCELED,
            f"job in work queue {key} was canceled",
            signature=key,
            was_running=running,
        )
