"""The node keeps SQLite's planner statistics fresh: without them SQLite took the index on a
column every row shares (``state``) over the one that narrows to a few rows (a host's)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from sqlalchemy import text

from zstackpy.core.db import Database
from zstackpy.core.db.statistics import StatisticsKeeper

PLAN = "EXPLAIN QUERY PLAN SELECT uuid FROM vm_like WHERE host_uuid = 'h1' AND state = 'Running'"


async def _plan(db: Database) -> str:
    async with db.read_session() as session:
        rows = (await session.execute(text(PLAN))).all()
    return " ".join(str(row[-1]) for row in rows)


async def test_the_planner_learns_which_index_narrows(tmp_path: Path) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'stats.db'}")
    try:
        async with db.session() as session, session.begin():
            await session.execute(
                text("CREATE TABLE vm_like (uuid TEXT PRIMARY KEY, host_uuid TEXT, state TEXT)")
            )
            await session.execute(text("CREATE INDEX ix_vm_like_host ON vm_like (host_uuid)"))
            await session.execute(text("CREATE INDEX ix_vm_like_state ON vm_like (state)"))
            await session.execute(
                text("INSERT INTO vm_like VALUES (:uuid, :host, 'Running')"),
                [{"uuid": f"{i:032x}", "host": f"h{i % 500}"} for i in range(5000)],
            )
        assert "ix_vm_like_state" in await _plan(db)  # the guess, with no statistics

        keeper = StatisticsKeeper(db, interval=0.05)
        keeper.start()
        try:
            async with asyncio.timeout(10):
                while keeper.runs < 2:
                    await asyncio.sleep(0.02)
        finally:
            await keeper.stop()
        assert "ix_vm_like_host" in await _plan(db)
    finally:
        await db.close()
