"""On the real MariaDB server: a transaction InnoDB picks as a deadlock victim is run again
and both sides of the lock cycle end committed; other errors are not retried."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from tests.support.mariadb import fresh_mariadb
from zstackpy.core.db.engine import Database
from zstackpy.core.db.retry import is_transient, retrying

pytestmark = pytest.mark.real_server


@pytest.fixture
async def db() -> AsyncIterator[Database]:
    async with fresh_mariadb() as url:
        database = Database(url)
        try:
            async with database.engine.begin() as conn:
                await conn.execute(text("CREATE TABLE books (id INT PRIMARY KEY, n INT)"))
                await conn.execute(text("INSERT INTO books VALUES (1, 0), (2, 0)"))
            yield database
        finally:
            await database.close()


async def test_a_deadlock_victim_is_run_again_and_both_commit(db: Database) -> None:
    both_hold_one = asyncio.Barrier(2)
    attempts = {"1->2": 0, "2->1": 0}
    victims: list[BaseException] = []

    async def transfer(first: int, second: int) -> None:
        name = f"{first}->{second}"
        attempts[name] += 1
        async with db.session() as session, session.begin():
            await session.execute(text("UPDATE books SET n = n + 1 WHERE id = :id"), {"id": first})
            if attempts[name] == 1:
                await both_hold_one.wait()  # each holds one row: the cycle closes below
            try:
                await session.execute(
                    text("UPDATE books SET n = n + 1 WHERE id = :id"), {"id": second}
                )
            except Exception as exc:
                victims.append(exc)
                raise

    await asyncio.wait_for(
        asyncio.gather(
            retrying(lambda: transfer(1, 2), "transfer 1->2"),
            retrying(lambda: transfer(2, 1), "transfer 2->1"),
        ),
        timeout=60,
    )
    assert len(victims) == 1
    assert is_transient(victims[0])
    assert sorted(attempts.values()) == [1, 2]  # the victim alone ran again
    async with db.session() as session:
        rows = (await session.execute(text("SELECT id, n FROM books ORDER BY id"))).all()
    assert [tuple(r) for r in rows] == [(1, 2), (2, 2)]  # both transfers, once each


async def test_other_errors_are_raised_at_once(db: Database) -> None:
    tries = 0

    async def duplicate() -> None:
        nonlocal tries
        tries += 1
        async with db.session() as session, session.begin():
            await session.execute(text("INSERT INTO books VALUES (1, 0)"))

    with pytest.raises(IntegrityError):
        await retrying(duplicate, "a duplicate")
    assert tries == 1
