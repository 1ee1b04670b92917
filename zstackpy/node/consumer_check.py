"""``/health``'s view of the node's bus consumers, checked with the broker at most every
few seconds and by one check at a time.

The check is a passive declare per queue of the node (about fifty), one round trip each.
Run for every ``/health`` request with a 2 s bound, a loaded node never finished it: its
event loop took longer than that for fifty round trips, so the node said "bus consumers
could not be checked" and was not ready for minutes while it served (seen after a database
outage under load, where the chaos harness polls ``/health``). A consumer goes missing with
a reconnect (which the transport counts: a new generation) or a broker-side cancel, so a
check of the same connection still tells: it is answered at once (with its age once
older than a few seconds, a new check then starting in the background), and a check that
outlasts one request's wait goes on and its answer serves the next.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

# A result younger than this is reused (same connection generation only).
FRESH_S = 5.0
# A check that takes longer than this is abandoned (the broker or the node is stuck).
CHECK_BOUND_S = 30.0


@dataclass(frozen=True, slots=True)
class Checked:
    missing: list[str]
    at: float  # monotonic
    generation: int


class ConsumerCheck:
    def __init__(
        self, missing_consumers: Callable[[], Awaitable[list[str]]], generation: Callable[[], int]
    ) -> None:
        self._missing_consumers = missing_consumers
        self._generation = generation
        self._last: Checked | None = None
        self._running: asyncio.Task[Checked] | None = None

    async def view(self, wait: float) -> tuple[str, str | None]:
        """(what ``/health`` shows, the reason the node is not ready or None). A result of
        the same connection is answered at once (an old one also starts a new check);
        without one, this waits up to ``wait`` s for a check."""
        generation = self._generation()
        last = self._last
        if last is not None and last.generation == generation:
            age = time.monotonic() - last.at
            if age >= FRESH_S:
                _ = self._start()  # refreshed in the background; this answer does not wait
            shown, reason = _shown(last.missing)
            return (shown if age < FRESH_S else f"{shown} (checked {age:.0f} s ago)"), reason
        task = self._start()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(task), wait)
        last = self._last
        if last is None or last.generation != generation:
            exc = task.exception() if task.done() and not task.cancelled() else None
            why = type(exc).__name__ if exc is not None else "the check takes long"
            return f"unknown: {why}", "bus consumers could not be checked"
        shown, reason = _shown(last.missing)
        age = time.monotonic() - last.at
        return (shown if age < FRESH_S else f"{shown} (checked {age:.0f} s ago)"), reason

    def prime(self) -> None:
        """Check now, in the background: the first ``/health`` then finds an answer (on a
        busy node the first check can take longer than a request waits)."""
        _ = self._start()

    def _start(self) -> asyncio.Task[Checked]:
        if self._running is None or self._running.done():
            self._running = asyncio.create_task(self._check(), name="bus-consumer-check")
            # Its failure is shown by view(); retrieved here so none goes unheard.
            self._running.add_done_callback(lambda t: t.cancelled() or t.exception())
        return self._running

    async def _check(self) -> Checked:
        generation = self._generation()
        async with asyncio.timeout(CHECK_BOUND_S):
            missing = await self._missing_consumers()
        checked = Checked(missing, time.monotonic(), generation)
        self._last = checked
        return checked


def _shown(missing: list[str]) -> tuple[str, str | None]:
    if missing:
        return f"missing on {missing}", "bus consumers missing"
    return "all present", None
