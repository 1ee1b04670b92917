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
from typing import Any, Generic, TypeVar, cast
from weakref import WeakKeyDictionary

from zstackpy.core.errors import ZError

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")
T = TypeVar("T")


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


class BatchedReads(Generic[K, V]):
    """Concurrent reads of *different* keys of one kind served by one read of them all
    (one ``WHERE uuid IN (...)`` instead of one query per key), with CoalescedReads'
    promise: each caller's answer comes from a read that started after it asked.

    ``fetch(keys)`` answers what it found, by key; a key it leaves out gets ``missing``'s
    error (raised in that caller alone). At most one read is in flight; keys asked while it
    runs wait for the next, which takes up to ``max_keys`` of them.
    """

    def __init__(
        self,
        fetch: Callable[[list[K]], Awaitable[dict[K, V]]],
        missing: Callable[[K], Exception],
        *,
        max_keys: int = 500,
    ) -> None:
        self._fetch = fetch
        self._missing = missing
        self._max_keys = max_keys
        self._waiting: dict[K, asyncio.Future[V]] = {}
        self._task: asyncio.Task[None] | None = None
        self.reads = 0  # reads made, for tests and metrics

    async def read(self, key: K) -> V:
        loop = asyncio.get_running_loop()
        future = self._waiting.get(key)
        if future is None:
            future = self._waiting[key] = loop.create_future()
        if self._task is None:
            self._task = loop.create_task(self._run())
        try:
            # shield: a caller that gives up must not cancel the read others wait for.
            return await asyncio.shield(future)
        except ZError as exc:
            raise ZError.from_info(exc.info()) from None

    async def _run(self) -> None:
        try:
            while self._waiting:
                keys = list(self._waiting)[: self._max_keys]
                futures = [self._waiting.pop(key) for key in keys]
                self.reads += 1
                try:
                    found = await self._fetch(keys)
                except Exception as exc:
                    for future in futures:
                        if not future.done():
                            future.set_exception(exc)
                            future.exception()  # retrieved: no warning if all gave up
                    continue
                for key, future in zip(keys, futures, strict=True):
                    if future.done():
                        continue
                    if key in found:
                        future.set_result(found[key])
                    else:
                        future.set_exception(self._missing(key))
                        future.exception()
        finally:
            self._task = None
            for future in self._waiting.values():
                if not future.done():
                    future.cancel()  # only when this task itself was cancelled
            self._waiting.clear()


_OWNED: WeakKeyDictionary[object, dict[str, Any]] = WeakKeyDictionary()


def owned_by(owner: object, name: str, make: Callable[[], T]) -> T:
    """The object named ``name`` that belongs to ``owner`` (made on first use, gone with
    the owner): how module-level functions given a node's context keep one coalescer per
    node, with ``owner`` its database."""
    objects = _OWNED.get(owner)
    if objects is None:
        objects = _OWNED[owner] = {}
    found = objects.get(name)
    if found is None:
        found = objects[name] = make()
    return cast(T, found)
