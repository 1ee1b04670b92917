"""The one-trip SQLite adapter behind the embedded database: what SQLAlchemy reads off a
cursor (rows, rowcount, RETURNING, executemany, errors) comes back as with the stock one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiosqlite
import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from zstackpy.core.db.engine import Database


async def test_statements_behave_as_sqlalchemy_expects(tmp_path: Path) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'one-hop.db'}")
    try:
        async with db.engine.begin() as conn:
            await conn.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT UNIQUE)"))
            inserted = await conn.execute(
                text("INSERT INTO t (v) VALUES (:v)"), [{"v": f"v{i}"} for i in range(5)]
            )
            assert inserted.rowcount == 5
            returned = await conn.execute(text("INSERT INTO t (v) VALUES ('x') RETURNING id"))
            assert returned.scalar_one() == 6
            updated = await conn.execute(text("UPDATE t SET v = v || '!' WHERE id <= 2"))
            assert updated.rowcount == 2
        async with db.engine.connect() as conn:
            rows = (await conn.execute(text("SELECT id, v FROM t ORDER BY id"))).all()
            assert [tuple(r) for r in rows[:3]] == [(1, "v0!"), (2, "v1!"), (3, "v2")]
            assert (await conn.execute(text("SELECT v FROM t WHERE id = 99"))).first() is None
        with pytest.raises(IntegrityError):
            async with db.engine.begin() as conn:
                await conn.execute(text("INSERT INTO t (v) VALUES ('x')"))
        async with db.engine.connect() as conn:  # the failed transaction left nothing
            assert (await conn.execute(text("SELECT count(*) FROM t"))).scalar_one() == 6
    finally:
        await db.close()


async def test_rollbacks_undo_writes_and_reads_make_one_trip(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'trips.db'}")
    trips: list[str] = []
    real_execute = aiosqlite.Connection._execute

    async def counted(self: aiosqlite.Connection, fn: Any, *args: Any, **kwargs: Any) -> Any:
        trips.append(getattr(fn, "__name__", repr(fn)))
        return await real_execute(self, fn, *args, **kwargs)  # type: ignore[no-untyped-call]  # aiosqlite leaves it untyped

    try:
        async with db.engine.begin() as conn:
            await conn.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)"))
        monkeypatch.setattr(aiosqlite.Connection, "_execute", counted)

        # A write that is rolled back leaves nothing: the rollback did reach the thread.
        async with db.session() as session:
            await session.execute(text("INSERT INTO t (v) VALUES ('gone')"))
            await session.rollback()
        # A committed write stays; it costs the statement and the commit, no more.
        trips.clear()
        async with db.session() as session, session.begin():
            await session.execute(text("INSERT INTO t (v) VALUES ('kept')"))
        assert trips == ["_run_statement", "commit"]
        # A read-only session is the statement alone (no rollback trips at its end).
        trips.clear()
        async with db.session() as session:
            values = (await session.execute(text("SELECT v FROM t"))).scalars().all()
        assert values == ["kept"]
        assert trips == ["_run_statement"]
    finally:
        await db.close()
