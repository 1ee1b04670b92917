"""The takeover hooks, run one ring change after the other in a task of their own.

The heartbeat finds ring changes, but must not run the hooks itself: they read and write
the database (failing a departed node's jobs, finding its hosts and VMs), which under load
takes seconds, and a node that stops beating for that long is evicted in turn by the
others (seen under load: each eviction cost the evictor its own place, until one node was
left). Hooks run in the order of the changes, never two at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable

from zstackpy.core.membership import NodeTakeover, RingChange

log = logging.getLogger(__name__)


class TakeoverRunner:
    def __init__(self, hooks: Callable[[], Iterable[NodeTakeover]]) -> None:
        self._hooks = hooks
        self._changes: asyncio.Queue[RingChange] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="node-takeovers")

    async def stop(self) -> None:
        """Cancel the hooks at work and drop the changes not handled yet (the node is
        leaving: the next owners handle them)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def submit(self, change: RingChange) -> None:
        self._changes.put_nowait(change)

    async def _run(self) -> None:
        while True:
            change = await self._changes.get()
            for hook in self._hooks():
                try:
                    await hook.take_over(change)
                except Exception:
                    log.exception("takeover hook %s failed", type(hook).__qualname__)
