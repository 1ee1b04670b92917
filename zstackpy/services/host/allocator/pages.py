"""Candidate hosts a page at a time, for placements in clouds of many hosts.

Reading every Enabled and Connected host of a zone for each VM costs O(hosts) per
placement: with 10,000 hosts the allocator alone would saturate a node. A paginated
placement reads the ``limit`` hosts that follow a random uuid, going round the uuid list
as a ring (after the last uuid, the first), runs the filters on them, and reads the next
``limit`` only when none of them fits; it stops when it is back at the start, so every host
is still considered before a placement fails. A page is always full while hosts remain: in
a cloud of at most ``limit`` hosts the first page is the whole cloud, so a strategy that
orders hosts (most free memory first) orders all of them. The random start spreads VMs over
the whole cloud as the default strategy's shuffle does within a page.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import TypeVarTuple

from sqlalchemy import Row, Select
from sqlalchemy.ext.asyncio import AsyncSession

from zstackpy.services.host.models import HostVO

Ts = TypeVarTuple("Ts")


class CandidatePages:
    """Where the next page starts on the ring of uuids. ``next_page`` reads it; ``advance``
    moves past a page read with the rows it returned."""

    def __init__(self, limit: int, start: str | None = None) -> None:
        self.limit = limit
        # Placement, not security: a non-cryptographic random start is what is wanted.
        self.start = start if start is not None else f"{random.getrandbits(128):032x}"
        self._cursor = self.start
        self._cursor_inclusive = True
        self.done = False
        self.read = 0  # pages read so far

    async def next_page(self, session: AsyncSession, stmt: Select[*Ts]) -> list[Row[*Ts]]:
        """The next page of ``stmt``'s rows: up to ``limit``, in ring order."""
        rows: list[Row[*Ts]] = []
        for segment in self._segments(stmt):
            rows += (await session.execute(segment.limit(self.limit - len(rows)))).all()
            if len(rows) == self.limit:
                break
        return rows

    def _segments(self, stmt: Select[*Ts]) -> Iterator[Select[*Ts]]:
        """``stmt`` narrowed to the uuids after the cursor, in ring order and without a
        limit (``next_page`` sets it to what the page still lacks)."""
        if self._cursor_inclusive:
            after = HostVO.uuid >= self._cursor
        else:
            after = HostVO.uuid > self._cursor
        if self._cursor >= self.start:
            # Not wrapped yet: up to the end of the list, then from its beginning.
            yield stmt.where(after).order_by(HostVO.uuid)
            yield stmt.where(HostVO.uuid < self.start).order_by(HostVO.uuid)
        else:
            yield stmt.where(after, HostVO.uuid < self.start).order_by(HostVO.uuid)

    def advance(self, uuids: list[str]) -> None:
        """``uuids``: the page as read, in ring order (before any filter)."""
        self.read += 1
        if len(uuids) < self.limit:
            self.done = True  # the page reached the start again: every host was read
            return
        self._cursor, self._cursor_inclusive = uuids[-1], False
