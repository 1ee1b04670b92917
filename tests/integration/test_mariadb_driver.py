"""The MariaDB engine on the real server: a commit or rollback is sent only when there is
something to end (yet always after a failed statement, whose locks must not outlive it),
and an idle pooled connection the server dropped is replaced, not handed out."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import asyncmy.connection
import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine
from sqlalchemy.pool import NullPool

from tests.support.mariadb import fresh_mariadb
from zstackpy.core.db import mariadb_driver
from zstackpy.core.db.engine import Database

pytestmark = pytest.mark.real_server

_ROUND_TRIPS = ("ping", "query", "commit", "rollback")


@pytest.fixture
def round_trips(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """What the node's connections send to the server, by kind."""
    seen: Counter[str] = Counter()
    for name in _ROUND_TRIPS:
        real = getattr(asyncmy.connection.Connection, name)

        def counted(real: Any = real, name: str = name) -> Any:
            async def call(self: Any, *args: Any, **kwargs: Any) -> Any:
                seen[name] += 1
                return await real(self, *args, **kwargs)

            return call

        monkeypatch.setattr(asyncmy.connection.Connection, name, counted())
    return seen


async def test_sessions_send_only_what_they_need(round_trips: Counter[str]) -> None:
    async with fresh_mariadb() as url:
        db = Database(url)
        try:
            async with db.engine.begin() as conn:
                await conn.execute(text("CREATE TABLE t (id INT PRIMARY KEY, v TEXT)"))
            round_trips.clear()
            async with db.session() as session, session.begin():
                await session.execute(text("INSERT INTO t VALUES (1, 'kept')"))
            assert round_trips == Counter(query=1, commit=1)

            round_trips.clear()
            async with db.session() as session:
                rows = (await session.execute(text("SELECT v FROM t"))).scalars().all()
            assert rows == ["kept"]
            # The SELECT opened a transaction (autocommit is off): one rollback ends it.
            assert round_trips == Counter(query=1, rollback=1)

            round_trips.clear()
            async with db.session() as session:
                await session.execute(text("INSERT INTO t VALUES (2, 'gone')"))
                await session.rollback()
            assert round_trips["rollback"] == 1
            async with db.session() as session:
                assert (await session.execute(text("SELECT count(*) FROM t"))).scalar() == 1
        finally:
            await db.close()


async def test_read_sessions_end_without_a_round_trip(round_trips: Counter[str]) -> None:
    async with fresh_mariadb() as url:
        db = Database(url)
        try:
            async with db.engine.begin() as conn:
                await conn.execute(text("CREATE TABLE t (id INT PRIMARY KEY, v TEXT)"))
            async with db.read_session() as session:  # its pool's first connection
                await session.execute(text("SELECT 1"))
            round_trips.clear()
            async with db.read_session() as reader:
                assert (await reader.execute(text("SELECT count(*) FROM t"))).scalar() == 0
                # A row committed meanwhile is seen by the next statement (autocommit).
                async with db.session() as writer, writer.begin():
                    await writer.execute(text("INSERT INTO t VALUES (1, 'new')"))
                rows = (await reader.execute(text("SELECT v FROM t"))).scalars().all()
                assert rows == ["new"]
            # Two statements and the writer's INSERT and COMMIT; nothing ends the reads.
            assert round_trips == Counter(query=3, commit=1)

            # Read-only group-commit batches run there too: no COMMIT for them.
            round_trips.clear()

            async def count(session: AsyncSession) -> int:
                return int((await session.execute(text("SELECT count(*) FROM t"))).scalar_one())

            assert list(await asyncio.gather(db.read(count), db.read(count))) == [1, 1]
            assert round_trips == Counter(query=2)  # their statements, and no COMMIT
        finally:
            await db.close()


async def test_a_failed_statement_leaves_no_lock_behind() -> None:
    async with fresh_mariadb() as url:
        db = Database(url)
        other = create_async_engine(url, poolclass=NullPool)
        try:
            async with db.engine.begin() as conn:
                await conn.execute(text("CREATE TABLE t (id INT PRIMARY KEY, v TEXT)"))
                await conn.execute(text("INSERT INTO t VALUES (1, 'row')"))
            # A duplicate key as the session's first statement: InnoDB keeps a lock on the
            # duplicate until the transaction the statement opened ends.
            with pytest.raises(IntegrityError):
                async with db.session() as session, session.begin():
                    await session.execute(text("INSERT INTO t VALUES (1, 'again')"))
            async with other.begin() as conn:
                await conn.execute(text("SET SESSION innodb_lock_wait_timeout = 1"))
                changed = await conn.execute(text("UPDATE t SET v = 'changed' WHERE id = 1"))
                assert changed.rowcount == 1
        finally:
            await other.dispose()
            await db.close()


async def test_an_idle_connection_the_server_dropped_is_replaced(
    monkeypatch: pytest.MonkeyPatch, round_trips: Counter[str]
) -> None:
    monkeypatch.setattr(mariadb_driver, "IDLE_PING_S", 0.0)
    async with fresh_mariadb() as url:
        db = Database(url)
        killer = create_async_engine(url, poolclass=NullPool)
        try:
            async with db.session() as session:
                pooled_id = (await session.execute(text("SELECT CONNECTION_ID()"))).scalar()
            async with killer.begin() as conn:
                await conn.execute(text(f"KILL {int(pooled_id or 0)}"))
            round_trips.clear()
            async with db.session() as session:
                fresh_id = (await session.execute(text("SELECT CONNECTION_ID()"))).scalar()
            assert fresh_id != pooled_id
            assert round_trips["ping"] >= 1  # the idle connection was checked, and failed
        finally:
            await killer.dispose()
            await db.close()
