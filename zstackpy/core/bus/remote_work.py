"""The handlers a node runs for other nodes, so a drain can wait for them and, at its end,
cut off the ones still at work with an answer for their callers instead of silence.

A handler is "for other nodes" when another node sent its message, or when such a handler
sent it to this node (a sub-call: a remote start asks the local VM service). The second
kind is known from a context variable the first sets, inherited by what it calls.
"""

from __future__ import annotations

import asyncio
import contextlib
from contextvars import ContextVar
from dataclasses import dataclass, field

from zstackpy.core.bus.transport import Envelope

_FOR_OTHERS: ContextVar[bool] = ContextVar("zstack_bus_for_others", default=False)


def for_others() -> bool:
    """True inside a handler at work for another node (and what it calls here)."""
    return _FOR_OTHERS.get()


def mark_for_others() -> None:
    """Called first thing in a tracked handler's own task (its context is its own)."""
    _FOR_OTHERS.set(True)


@dataclass(slots=True, eq=False)
class Handling:
    """One tracked handler."""

    env: Envelope
    # Its caller, on another node, waits for this node's reply.
    answers: bool
    task: asyncio.Task[None] | None = None
    # The handler returned: its own reply is on its way, so it is not cut off.
    replying: bool = False
    # Cut off: its caller was answered with an error; the handler's own reply is dropped.
    cut: bool = False


@dataclass
class RemoteWork:
    _running: set[Handling] = field(default_factory=set)
    _idle: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        self._idle.set()

    def __len__(self) -> int:
        return len(self._running)

    def track(self, handling: Handling, task: asyncio.Task[None]) -> None:
        handling.task = task
        self._running.add(handling)
        self._idle.clear()
        task.add_done_callback(lambda _: self._done(handling))

    def _done(self, handling: Handling) -> None:
        self._running.discard(handling)
        if not self._running:
            self._idle.set()

    async def wait(self, timeout: float) -> int:  # noqa: ASYNC109 -- the drain's bound
        """Wait up to ``timeout`` s for every tracked handler to end; how many still run."""
        if self._running:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(timeout, 0.0)):
                    await self._idle.wait()
        return len(self._running)

    def cut_off(self) -> list[Handling]:
        """Cancel every tracked handler still at work (not already replying); answers
        them, for the bus to tell their callers."""
        cut = [h for h in self._running if not h.replying and not h.cut]
        for handling in cut:
            handling.cut = True
            assert handling.task is not None
            handling.task.cancel("the management node drained before this handler ended")
        return cut

    async def ended(self, handlings: list[Handling], timeout: float) -> int:  # noqa: ASYNC109
        """Wait up to ``timeout`` s for cancelled handlers to unwind (rollbacks, queue
        slots given back); how many still had not."""
        tasks = {h.task for h in handlings if h.task is not None and not h.task.done()}
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=timeout)
            return len(pending)
        return 0
