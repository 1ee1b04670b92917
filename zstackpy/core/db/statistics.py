"""Planner statistics for SQLite, kept fresh by the node.

Without statistics SQLite's planner guesses every index is equally selective: asked for
the Running VMs of one host, it walked the ``state`` index (every VM of a million Running)
instead of the ``host_uuid`` one (ten VMs), 0.5 s a query. ``ANALYZE`` with an
``analysis_limit`` samples each index (0.1 s on a 4 GiB database) and lets it choose. The
node runs it at start and every ``REFRESH_INTERVAL_S`` while tables grow. MariaDB keeps
InnoDB's persistent statistics up to date by itself: nothing to do there.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from sqlalchemy import text

from zstackpy.core.db.engine import Database

log = logging.getLogger(__name__)

# Rows sampled per index: plenty to tell a unique column from a five-valued one.
ANALYSIS_LIMIT = 400
REFRESH_INTERVAL_S = 300.0


async def analyze(db: Database) -> None:
    """Refresh the planner's statistics of every table (SQLite; nothing elsewhere)."""
    if db.dialect != "sqlite":
        return
    async with db.session() as session, session.begin():
        await session.execute(text(f"PRAGMA analysis_limit={ANALYSIS_LIMIT}"))
        await session.execute(text("ANALYZE"))
    db.statistics_generation += 1


class StatisticsKeeper:
    """``analyze`` now and every ``interval`` s until ``stop``."""

    def __init__(self, db: Database, interval: float = REFRESH_INTERVAL_S) -> None:
        self._db = db
        self._interval = interval
        self._task: asyncio.Task[None] | None = None
        self.runs = 0

    def start(self) -> None:
        if self._db.dialect == "sqlite" and self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            try:
                await analyze(self._db)
                self.runs += 1
            except Exception:
                # Stale statistics cost speed, never correctness: try again next time.
                log.exception("refreshing the database's planner statistics failed")
            await asyncio.sleep(self._interval)
