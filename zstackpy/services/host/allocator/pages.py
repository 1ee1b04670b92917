"""Candidate hosts a page at a time, for placements in clouds of many hosts.

Reading every Enabled and Connected host of a zone for each VM costs O(hosts) per
placement: with 10,000 hosts the allocator alone would saturate a node. A paginated
placement reads ``limit`` hosts in uuid order from a random uuid, runs the filters on them,
and reads the next page only when none of them fits; after the last uuid it wraps to the
first and stops where it started, so every host is still considered before a placement
fails. The random start spreads VMs over the whole cloud as the default strategy's shuffle
does within a page; the other strategies order each page, not the whole cloud.
"""

from __future__ import annotations

import random
from typing import TypeVarTuple

from sqlalchemy import Select

from zstackpy.services.host.models import HostVO

Ts = TypeVarTuple("Ts")


class CandidatePages:
    """Where the next page starts. ``narrow`` restricts a candidate query to it;
    ``advance`` moves past a page read with the rows it returned."""

    def __init__(self, limit: int, start: str | None = None) -> None:
        self.limit = limit
        # Placement, not security: a non-cryptographic random start is what is wanted.
        self.start = start if start is not None else f"{random.getrandbits(128):032x}"
        self._low = self.start
        self._low_inclusive = True
        self._high: str | None = None  # set once wrapped: stop before the start
        self.done = False
        self.read = 0  # pages read so far

    def narrow(self, stmt: Select[*Ts]) -> Select[*Ts]:
        if self._low_inclusive:
            stmt = stmt.where(HostVO.uuid >= self._low)
        else:
            stmt = stmt.where(HostVO.uuid > self._low)
        if self._high is not None:
            stmt = stmt.where(HostVO.uuid < self._high)
        return stmt.order_by(HostVO.uuid).limit(self.limit)

    def advance(self, uuids: list[str]) -> None:
        """``uuids``: the page as read, in order (before any filter)."""
        self.read += 1
        if len(uuids) == self.limit:
            self._low, self._low_inclusive = uuids[-1], False
        elif self._high is None:
            # The end of the list: wrap to its beginning, up to the start.
            self._low, self._low_inclusive, self._high = "", True, self.start
        else:
            self.done = True
