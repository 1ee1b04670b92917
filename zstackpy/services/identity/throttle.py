"""Failed-login throttling per account name, in memory.

Login messages are routed by account name, so all attempts on one name meet on one node
and this node-local state is consistent for the whole cluster. It is lost when the ring
moves a name to another node (a node joins or leaves): at worst an attacker gets one fresh
window, which is acceptable for state that costs no database write per attempt.

Not thread-safe and needs no lock: it is touched from the event loop only, and the service
runs the attempts on one name one at a time (a work queue), so check-then-record cannot
interleave.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

# Bound on remembered names: a spray over millions of names must not grow memory forever.
MAX_TRACKED_NAMES = 100_000


@dataclass(slots=True)
class _Record:
    failures: deque[float] = field(default_factory=deque)
    locked_until: float = 0.0


@dataclass(frozen=True, slots=True)
class ThrottlePolicy:
    max_failures: int
    window_s: float
    lock_s: float


class LoginThrottle:
    """``now`` values are monotonic seconds (the loop's clock)."""

    def __init__(self) -> None:
        self._records: dict[str, _Record] = {}

    def __len__(self) -> int:
        return len(self._records)

    def retry_after(self, name: str, now: float) -> float | None:
        """Seconds until ``name`` may try again; None if it may try now."""
        record = self._records.get(name)
        if record is None or record.locked_until <= now:
            return None
        return record.locked_until - now

    def failed(self, name: str, now: float, policy: ThrottlePolicy) -> bool:
        """Record a failed attempt; True if it locked the name."""
        record = self._records.get(name)
        if record is None:
            if len(self._records) >= MAX_TRACKED_NAMES:
                self.prune(now, policy)
            if len(self._records) >= MAX_TRACKED_NAMES:
                # Still full of live records: forget the oldest name, not the newest.
                del self._records[next(iter(self._records))]
            record = self._records[name] = _Record()
        self._expire(record, now, policy)
        record.failures.append(now)
        if len(record.failures) >= policy.max_failures:
            record.locked_until = now + policy.lock_s
            # The lock is the penalty; after it the name starts from a clean count.
            record.failures.clear()
            return True
        return False

    def succeeded(self, name: str) -> None:
        self._records.pop(name, None)

    def prune(self, now: float, policy: ThrottlePolicy) -> int:
        """Forget names neither locked nor with a failure inside the window."""
        stale = []
        for name, record in self._records.items():
            self._expire(record, now, policy)
            if not record.failures and record.locked_until <= now:
                stale.append(name)
        for name in stale:
            del self._records[name]
        return len(stale)

    @staticmethod
    def _expire(record: _Record, now: float, policy: ThrottlePolicy) -> None:
        horizon = now - policy.window_s
        while record.failures and record.failures[0] <= horizon:
            record.failures.popleft()
