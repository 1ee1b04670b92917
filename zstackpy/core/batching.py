"""Requests about one resource, served together by one job of that resource's work queue.

A resource whose every change runs in its queue (a host's capacity, a storage's books, an
L3 network's addresses) serves concurrent requests one job at a time; when each job is a
database transaction, a burst of a thousand VM creations waits for a thousand
transactions in a row, each as slow as the busy event loop makes its round trips. Here
each request joins the resource's pending list and queues a job as usual; the first job
the queue grants serves every request pending at that moment (up to ``max_batch``) with
one call of ``serve``, in arrival order; the later jobs find their request answered and
return at once. The queue still orders the batch against every other job of the resource,
so nothing that needed the queue's exclusivity loses it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from zstackpy.core.errors import SysErr, ZError
from zstackpy.core.workqueue import QueueKey, WorkQueues

Req = TypeVar("Req")
Res = TypeVar("Res")

DEFAULT_MAX_BATCH = 1000

# serve(requests) -> one outcome per request, in order: a result or the error to raise.
Serve = Callable[[list[Req]], Awaitable[Sequence[Res | ZError]]]


@dataclass(eq=False, slots=True)
class _Pending(Generic[Req, Res]):
    request: Req
    future: asyncio.Future[Res]


class QueueBatcher(Generic[Req, Res]):
    """One per kind of request; ``submit`` from any task."""

    def __init__(
        self, queues: WorkQueues, serve: Serve[Req, Res], *, max_batch: int = DEFAULT_MAX_BATCH
    ) -> None:
        self._queues = queues
        self._serve_fn = serve
        self._max_batch = max_batch
        self._pending: dict[str, list[_Pending[Req, Res]]] = {}

    async def submit(self, signature: QueueKey, request: Req) -> Res:
        """The outcome of ``request``, served in ``signature``'s queue, maybe with others.

        Raises what ``serve`` answered for it (a ZError), or what ``serve`` raised for the
        whole batch. A caller cancelled after its batch committed keeps the effect: callers
        undo what they roll back, as they would without batching."""
        key = str(signature)
        entry: _Pending[Req, Res] = _Pending(request, asyncio.get_running_loop().create_future())
        self._pending.setdefault(key, []).append(entry)
        try:
            await self._queues.run(signature, self._serve, key)
        except BaseException:
            # Gone before any batch took it (cancelled, queue refused): nobody may serve it.
            pending = self._pending.get(key)
            if pending is not None and entry in pending:
                pending.remove(entry)
                if not pending:
                    del self._pending[key]
            if not entry.future.done():
                entry.future.cancel()
            raise
        if not entry.future.done():
            raise ZError(SysErr.INTERNAL, f"the batch of {key} ended without an answer")
        return entry.future.result()

    async def _serve(self, key: str) -> None:
        pending = self._pending.pop(key, [])
        batch, rest = pending[: self._max_batch], pending[self._max_batch :]
        if rest:
            self._pending[key] = rest  # their own jobs are still queued behind this one
        if not batch:
            return
        try:
            await self._answer(batch)
        finally:
            # Stopped half-way (cancelled): each unanswered request's own job is still
            # queued behind this one, so handing it back gets it served.
            unanswered = [e for e in batch if not e.future.done()]
            if unanswered:
                self._pending[key] = unanswered + self._pending.get(key, [])

    async def _answer(self, batch: list[_Pending[Req, Res]]) -> None:
        outcomes: Sequence[Res | BaseException]
        try:
            outcomes = await self._serve_fn([e.request for e in batch])
        except ZError as exc:
            # Each caller raises its own copy: one exception object raised in many tasks
            # would collect all their tracebacks.
            outcomes = [ZError.from_info(exc.info()) for _ in batch]
        except Exception as exc:
            outcomes = [exc] * len(batch)
        if len(outcomes) != len(batch):
            error = ZError(SysErr.INTERNAL, "a batch answered the wrong number of requests")
            outcomes = [error] * len(batch)
        for entry, outcome in zip(batch, outcomes, strict=True):
            if entry.future.done():
                continue  # its caller gave up (cancelled) while the batch ran
            if isinstance(outcome, BaseException):
                entry.future.set_exception(outcome)
            else:
                entry.future.set_result(outcome)
