"""Results by task id, so a repeated command is answered without running it again.

The node may resend a command with the same ``taskuuid`` (it lost the answer, or retried
after a restart). The cache keeps one ``TaskEntry`` per task id: running entries collect
the callback URLs waiting for them; finished ones keep their result. It is bounded twice:
at most ``max_entries`` entries and none older than ``max_age`` seconds (loop time), the
oldest going first. Evicting an entry only forgets the id: a task still running goes on
and still answers the callbacks it has.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

DEFAULT_MAX_ENTRIES = 10_000
DEFAULT_MAX_AGE_S = 900.0  # well past the node's longest command timeout (300 s by default)


@dataclass(slots=True, eq=False)
class TaskEntry:
    """One task id. ``result`` is None while the command runs; ``waiting`` holds the
    callback URLs to POST the result to when it finishes."""

    path: str
    created: float
    waiting: list[str] = field(default_factory=list)
    result: dict[str, Any] | None = None

    @property
    def is_finished(self) -> bool:
        return self.result is not None


class TaskCache:
    """Bounded map task id -> ``TaskEntry``; used from the event loop only."""

    __slots__ = ("_entries", "max_age", "max_entries")

    def __init__(
        self, max_entries: int = DEFAULT_MAX_ENTRIES, max_age: float = DEFAULT_MAX_AGE_S
    ) -> None:
        if max_entries < 1 or max_age <= 0:
            raise ValueError("the task cache needs max_entries >= 1 and max_age > 0")
        self.max_entries = max_entries
        self.max_age = max_age
        self._entries: OrderedDict[str, TaskEntry] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, task_uuid: str) -> TaskEntry | None:
        self._prune(_now())
        return self._entries.get(task_uuid)

    def add(self, task_uuid: str, path: str, callback_url: str) -> TaskEntry:
        """A new running task, with ``callback_url`` waiting for its result."""
        now = _now()
        self._prune(now)
        entry = TaskEntry(path=path, created=now, waiting=[callback_url])
        self._entries[task_uuid] = entry
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)
        return entry

    def discard(self, task_uuid: str) -> None:
        self._entries.pop(task_uuid, None)

    def _prune(self, now: float) -> None:
        # Entries are added in time order, so the expired ones are all at the front.
        horizon = now - self.max_age
        while self._entries:
            oldest = next(iter(self._entries.values()))
            if oldest.created > horizon:
                break
            self._entries.popitem(last=False)


def _now() -> float:
    # Loop time, not wall time: looptime-driven tests move it without real sleeps.
    return asyncio.get_running_loop().time()
