"""The one-trip SQLite adapter behind the embedded database: what SQLAlchemy reads off a
cursor (rows, rowcount, RETURNING, executemany, errors) comes back as with the stock one."""

from __future__ import annotations

from pathlib import Path

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
