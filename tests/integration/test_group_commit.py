"""Group commit on both databases: concurrent write transactions share commits, yet each
caller gets exactly what it would have got writing alone (its result or its own error), a
failed neighbour costs nothing, and reads join the batches without spoiling them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import (
    Column,
    Integer,
    MetaData,
    String,
    Table,
    func,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from tests.support.mariadb import fresh_mariadb
from zstackpy.core.db.engine import Database
from zstackpy.core.db.group_commit import Prepare, Unit
from zstackpy.core.errors import SysErr, ZError


class Base(DeclarativeBase):
    metadata = MetaData()


class Numbered(Base):
    """A row whose number the database gives (autoincrement)."""

    __tablename__ = "numbered"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    owner: Mapped[str] = mapped_column(String(32))


metadata = Base.metadata
things = Table(
    "things",
    metadata,
    Column("uuid", String(32), primary_key=True),
    Column("state", String(32), nullable=False),
    Column("n", Integer, nullable=False),
)


@pytest.fixture(params=["sqlite", pytest.param("mariadb", marks=pytest.mark.real_server)])
async def db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    if request.param == "sqlite":
        database = Database(f"sqlite+aiosqlite:///{tmp_path / 'group.db'}")
        try:
            await _create(database)
            yield database
        finally:
            await database.close()
        return
    async with fresh_mariadb() as url:
        database = Database(url)
        try:
            await _create(database)
            yield database
        finally:
            await database.close()


async def _create(database: Database) -> None:
    async with database.engine.begin() as conn:
        await conn.run_sync(metadata.create_all)


def add(uuid: str, n: int = 0) -> Unit[str]:
    async def unit(session: AsyncSession) -> str:
        await session.execute(insert(things).values(uuid=uuid, state="new", n=n))
        return uuid

    return unit


async def count(database: Database) -> int:
    async with database.session() as session:
        return int(await session.scalar(select(func.count()).select_from(things)) or 0)


async def test_concurrent_writes_share_commits_and_all_land(db: Database) -> None:
    results = await asyncio.gather(*(db.write(add(f"u{i}")) for i in range(100)))
    assert results == [f"u{i}" for i in range(100)]
    assert await count(db) == 100
    # The first write went alone; the 99 handed in while it ran shared far fewer commits.
    assert db.group_commit.units == 100
    assert db.group_commit.batches < 10


def slow(uuid: str) -> Unit[str]:
    """A write whose transaction lasts half a second (MariaDB's SLEEP)."""

    async def unit(session: AsyncSession) -> str:
        await session.execute(text("SELECT SLEEP(0.5)"))
        await session.execute(insert(things).values(uuid=uuid, state="new", n=0))
        return uuid

    return unit


@pytest.mark.real_server
async def test_writes_arriving_during_a_batch_wait_for_one_next_batch() -> None:
    """While a batch runs, later writes queue for the next one instead of starting writers
    of their own (which made batches of two or three units under load); more writers
    start only for a backlog bigger than a batch."""
    async with fresh_mariadb() as url:
        database = Database(url)
        group = database.group_commit
        try:
            await _create(database)
            first = asyncio.create_task(database.write(slow("slow")))
            await asyncio.sleep(0.1)  # its batch is under way
            trickle = []
            for i in range(30):
                trickle.append(asyncio.create_task(database.write(add(f"t{i}"))))
                await asyncio.sleep(0.005)
            assert await first == "slow"
            assert await asyncio.gather(*trickle) == [f"t{i}" for i in range(30)]
            assert (group.batches, group.units) == (2, 31)

            group._max_batch = 5
            busy = asyncio.create_task(database.write(slow("busy")))
            await asyncio.sleep(0.1)
            backlog = [asyncio.create_task(database.write(add(f"b{i}"))) for i in range(20)]
            await asyncio.sleep(0)
            assert len(group._tasks) > 1  # a backlog of 20 over batches of 5
            assert await busy == "busy"
            assert len(await asyncio.gather(*backlog)) == 20
            assert await count(database) == 52
        finally:
            await database.close()


async def test_a_write_handed_in_as_the_writer_ends_is_not_stranded(db: Database) -> None:
    """A write handed in after the writer's last look at the queue, while its task is done
    but not yet forgotten, used to find "a writer running" and wait for one that never came
    (a VM start hung at the end of a burst)."""
    group = db.group_commit
    first = asyncio.create_task(db.write(add("a")))

    async def hand_in_at_the_end() -> str:
        while True:
            writers = list(group._tasks)
            if (writers and all(task.done() for task in writers)) or first.done():
                return await db.write(add("b"))
            await asyncio.sleep(0)

    assert await asyncio.wait_for(hand_in_at_the_end(), 10) == "b"
    assert await first == "a"
    assert await count(db) == 2


async def test_a_failing_unit_fails_alone_and_its_neighbours_commit(db: Database) -> None:
    await db.write(add("taken"))

    async def half_then_duplicate(session: AsyncSession) -> None:
        # Its first statement must not survive its second one's failure.
        await session.execute(insert(things).values(uuid="half", state="new", n=0))
        await session.execute(insert(things).values(uuid="taken", state="new", n=0))

    outcomes = await asyncio.gather(
        *(db.write(add(f"ok{i}")) for i in range(20)),
        db.write(half_then_duplicate),
        *(db.write(add(f"ok{i}")) for i in range(20, 40)),
        return_exceptions=True,
    )
    errors = [o for o in outcomes if isinstance(o, BaseException)]
    assert len(errors) == 1
    assert isinstance(errors[0], IntegrityError)
    async with db.session() as session:
        stored = set(await session.scalars(select(things.c.uuid)))
    assert stored == {"taken"} | {f"ok{i}" for i in range(40)}  # no "half"


async def test_a_reads_own_error_spoils_nothing(db: Database) -> None:
    await db.write(add("present", 7))

    async def read(session: AsyncSession) -> int:
        n = await session.scalar(select(things.c.n).where(things.c.uuid == "present"))
        return int(n or 0)

    async def missing(session: AsyncSession) -> int:
        if await session.scalar(select(things.c.n).where(things.c.uuid == "absent")) is None:
            raise ZError(SysErr.RESOURCE_NOT_FOUND, "no thing absent", uuid="absent")
        return 0

    before = db.group_commit.batches
    outcomes = await asyncio.gather(
        *(db.write(add(f"w{i}")) for i in range(10)),
        db.read(missing),
        db.read(read),
        *(db.write(add(f"w{i}")) for i in range(10, 20)),
        return_exceptions=True,
    )
    assert isinstance(outcomes[10], ZError)
    assert outcomes[10].code == SysErr.RESOURCE_NOT_FOUND
    assert outcomes[11] == 7
    assert await count(db) == 21
    # Nothing ran twice: the read's error did not send the batch's units to run alone.
    assert db.group_commit.batches - before <= 3


async def test_a_task_reads_its_own_committed_write(db: Database) -> None:
    await db.write(add("mine"))

    async def bump(session: AsyncSession) -> int:
        changed = await session.execute(
            update(things).where(things.c.uuid == "mine").values(n=things.c.n + 1)
        )
        return changed.rowcount  # type: ignore[attr-defined, no-any-return]  # CursorResult

    async def read(session: AsyncSession) -> int:
        return int(await session.scalar(select(things.c.n).where(things.c.uuid == "mine")) or 0)

    assert await asyncio.gather(*(db.write(bump) for _ in range(30))) == [1] * 30
    assert await db.read(read) == 30


async def test_a_caller_cancelled_before_its_batch_never_writes(db: Database) -> None:
    started = asyncio.Event()
    release = asyncio.Event()

    async def slow(session: AsyncSession) -> None:
        await session.execute(insert(things).values(uuid="first", state="new", n=0))
        started.set()
        await release.wait()  # holds the batch (a test-only unit: real units never wait)

    first = asyncio.create_task(db.write(slow))
    await started.wait()
    queued = asyncio.create_task(db.write(add("never")))
    await asyncio.sleep(0)
    queued.cancel()
    release.set()
    await first
    with pytest.raises(asyncio.CancelledError):
        await queued
    async with db.session() as session:
        assert list(await session.scalars(select(things.c.uuid))) == ["first"]


async def test_prepared_rows_get_their_numbers_before_the_units_run(db: Database) -> None:
    async def numbered_thing(i: int) -> tuple[int, int]:
        row = Numbered(owner=f"n{i}")

        def prepare(session: AsyncSession) -> None:
            session.add(row)

        async def unit(session: AsyncSession) -> tuple[int, int]:
            # The number exists already: the batch's flush gave it before units ran.
            await session.execute(insert(things).values(uuid=f"n{i}", state="new", n=row.id))
            return i, row.id

        return await db.write(unit, prepare=prepare)

    answers = await asyncio.gather(*(numbered_thing(i) for i in range(40)))
    numbers = [number for _, number in answers]
    assert len(set(numbers)) == 40  # each its own number
    async with db.session() as session:
        stored = dict((await session.execute(select(things.c.uuid, things.c.n))).all())
        owners = dict((await session.execute(select(Numbered.id, Numbered.owner))).all())
    for i, number in answers:
        assert stored[f"n{i}"] == number
        assert owners[number] == f"n{i}"


async def test_a_failed_batch_gives_prepared_rows_new_numbers_alone(db: Database) -> None:
    await db.write(add("taken"))
    rows = [Numbered(owner=f"r{i}") for i in range(10)]

    def preparing(row: Numbered) -> Prepare:
        def prepare(session: AsyncSession) -> None:
            session.add(row)

        return prepare

    def unit_for(i: int) -> Unit[int]:
        async def unit(session: AsyncSession) -> int:
            uuid = "taken" if i == 5 else f"r{i}"  # the sixth fails the batch
            await session.execute(insert(things).values(uuid=uuid, state="new", n=rows[i].id))
            return rows[i].id

        return unit

    outcomes = await asyncio.gather(
        *(db.write(unit_for(i), prepare=preparing(rows[i])) for i in range(10)),
        return_exceptions=True,
    )
    assert isinstance(outcomes[5], IntegrityError)
    async with db.session() as session:
        kept = dict((await session.execute(select(things.c.uuid, things.c.n))).all())
        numbered = set(await session.scalars(select(Numbered.id)))
    for i in (0, 1, 2, 3, 4, 6, 7, 8, 9):
        assert kept[f"r{i}"] == outcomes[i]
        assert outcomes[i] in numbered  # the number its row really has
    assert len(numbered) == 9  # the failed one's row went with its transaction
