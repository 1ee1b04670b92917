"""Concurrent identical reads served by one read that started after each of them arrived.

A burst of VM creations reads the same image, networks and offering once per VM. Here the
first read of a key runs at once; requests that arrive while it runs wait for the *next*
read of that key, which starts when the current one ends and serves all of them. So each
caller gets the outcome of a read that began after its own request (what it would have seen
reading alone: a change committed before it asked is never missed), and a key has at most
one read in flight however many callers ask.

The outcome (result or exception) is shared by the callers of one read: treat it as
read-only.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

from zstackpy.core.errors import ZError

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


@dataclass(slots=True)
class _Key(Generic[V]):
    running: asyncio.Future[V]
    # Callers that arrived while ``running`` ran: served together by the next read.
    next_read: asyncio.Future[V] | None = None


class CoalescedReads(Generic[K, V]):
    """One per kind of read; ``read`` from any task on one event loop."""

    def __init__(self, fetch: Callable[[K], Awaitable[V]]) -> None:
        self._fetch = fetch
        self._keys: dict[K, _Key[V]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.reads = 0  # reads made, for tests and metrics

    async def read(self, key: K) -> V:
        loop = asyncio.get_running_loop()
        state = self._keys.get(key)
        if state is None:
            state = self._keys[key] = _Key(loop.create_future())
            task = loop.create_task(self._run(key, state))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            future = state.running
        else:
            if state.next_read is None:
                state.next_read = loop.create_future()
            future = state.next_read
        try:
            # shield: a caller that gives up must not cancel the read others wait for.
            return await asyncio.shield(future)
        except ZError as exc:
            # Each caller raises its own copy: one exception object raised in many tasks
            # would collect all their tracebacks.
            raise ZError.from_info(exc.info()) from None

    async def _run(self, key: K, state: _Key[V]) -> None:
        try:
            while True:
                await self._read_into(key, state.running)
                if state.next_read is None:
                    return
                state.running, state.next_read = state.next_read, None
        finally:
            del self._keys[key]
            for future in (state.running, state.next_read):
                if future is not None and not future.done():
                    future.cancel()  # only when this task itself was cancelled

    async def _read_into(self, key: K, future: asyncio.Future[V]) -> None:
        self.reads += 1
        try:
            value = await self._fetch(key)
        except Exception as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: no warning if every caller gave up
        else:
            future.set_result(value)
