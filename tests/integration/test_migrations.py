"""Migrations on SQLite and on the real MariaDB: empty -> head, models == schema, the clock."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, select, text
from sqlalchemy.engine import Connection

import zstackpy.all_models  # noqa: F401  -- every table joins Base.metadata
from tests.support.mariadb import fresh_mariadb
from zstackpy.core.db import (
    Base,
    Database,
    ResourceVO,
    current_revision,
    db_epoch,
    ensure_at_head,
    head_revision,
    upgrade,
)
from zstackpy.core.db.migrate import alembic_config
from zstackpy.core.errors import KernelErr, ZError

KERNEL_TABLES = {"ResourceVO", "ManagementNodeVO", "GlobalConfigVO"}


@pytest.fixture(
    params=[
        pytest.param("sqlite"),
        pytest.param("mariadb", marks=pytest.mark.real_server),
    ]
)
async def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """An empty database: a SQLite file in a directory that does not exist yet, or a fresh
    MariaDB schema."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'not-yet' / 'zstack.db'}"
    else:
        async with fresh_mariadb() as url:
            yield url


@pytest.fixture
async def db(db_url: str) -> AsyncIterator[Database]:
    database = Database(db_url)
    try:
        yield database
    finally:
        await database.close()


def _schema_diff(conn: Connection) -> list[Any]:
    ctx = MigrationContext.configure(conn, opts={"compare_type": True})
    return list(compare_metadata(ctx, Base.metadata))


def _table_names(conn: Connection) -> set[str]:
    return set(inspect(conn).get_table_names())


async def test_empty_database_is_refused_with_the_fix(db: Database) -> None:
    with pytest.raises(ZError) as caught:
        await ensure_at_head(db)
    err = caught.value
    assert err.code == KernelErr.DB_SCHEMA_NOT_AT_HEAD
    assert "zstackpy db upgrade" in err.description
    assert "ZSTACK_DB_URL=" in err.description
    assert head_revision() in err.description
    assert err.details["current"] is None
    assert err.details["head"] == head_revision()


async def test_upgrade_brings_empty_database_to_head(db_url: str, db: Database) -> None:
    assert await current_revision(db) is None
    await upgrade(db_url)
    assert await current_revision(db) == head_revision()
    await ensure_at_head(db)
    async with db.engine.connect() as conn:
        assert await conn.run_sync(_table_names) >= KERNEL_TABLES


async def test_a_schema_newer_than_the_code_is_refused(db_url: str, db: Database) -> None:
    await upgrade(db_url)
    async with db.session() as session, session.begin():
        await session.execute(text("UPDATE alembic_version SET version_num = '9999_future'"))
    with pytest.raises(ZError) as caught:
        await ensure_at_head(db)
    assert caught.value.code == KernelErr.DB_SCHEMA_NOT_AT_HEAD
    assert "does not know" in caught.value.description
    assert caught.value.details["current"] == "9999_future"


async def test_models_match_migrated_schema(db_url: str, db: Database) -> None:
    await upgrade(db_url)
    async with db.engine.connect() as conn:
        assert await conn.run_sync(_schema_diff) == []


async def test_upgrade_twice_is_a_no_op(db_url: str, db: Database) -> None:
    await upgrade(db_url)
    async with db.session() as session, session.begin():
        session.add(ResourceVO(uuid="a" * 32, resource_type="ZoneVO", resource_name="z1"))
    await upgrade(db_url)
    assert await current_revision(db) == head_revision()
    async with db.session() as session:
        row = await session.get(ResourceVO, "a" * 32)
    assert row is not None
    assert row.resource_name == "z1"
    assert row.create_date is not None  # filled by the database's default
    async with db.engine.connect() as conn:
        assert await conn.run_sync(_schema_diff) == []


async def test_downgrade_to_base_removes_the_kernel_tables(db_url: str, db: Database) -> None:
    await upgrade(db_url)
    await asyncio.to_thread(command.downgrade, alembic_config(db_url), "base")
    assert await current_revision(db) is None
    async with db.engine.connect() as conn:
        assert not KERNEL_TABLES & await conn.run_sync(_table_names)


async def test_db_epoch_is_within_a_second_of_wall_clock(db: Database) -> None:
    async with db.session() as session:
        before = time.time()
        first = (await session.execute(select(db_epoch()))).scalar_one()
        after = time.time()
        # Whole seconds would make two reads 50 ms apart differ by 0 or 1.
        await asyncio.sleep(0.05)
        second = (await session.execute(select(db_epoch()))).scalar_one()
    assert isinstance(first, float)
    assert before - 1.0 <= first <= after + 1.0
    assert 0.0 < second - first < 0.5


async def test_sqlite_connections_are_tuned(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "zstack.db"
    db = Database(f"sqlite+aiosqlite:///{path}")
    try:
        assert db.dialect == "sqlite"
        async with db.engine.connect() as conn:
            pragmas = {
                name: (await conn.execute(text(f"PRAGMA {name}"))).scalar_one()
                for name in ("journal_mode", "foreign_keys", "busy_timeout", "synchronous")
            }
    finally:
        await db.close()
    assert pragmas == {
        "journal_mode": "wal",
        "foreign_keys": 1,
        "busy_timeout": 5000,
        "synchronous": 1,
    }
    assert await asyncio.to_thread(path.exists)


@pytest.mark.real_server
async def test_mariadb_sessions_are_utf8mb4_utc_read_committed() -> None:
    async with fresh_mariadb() as url:
        db = Database(url)
        try:
            assert db.dialect == "mysql"
            async with db.engine.connect() as conn:
                row = (
                    await conn.execute(
                        text("SELECT @@character_set_connection, @@time_zone, @@tx_isolation")
                    )
                ).one()
        finally:
            await db.close()
    assert tuple(row) == ("utf8mb4", "+00:00", "READ-COMMITTED")


@pytest.mark.real_server
@pytest.mark.parametrize("zone", ["+00:00", "+05:30", "-08:00", "SYSTEM"])
async def test_mariadb_db_epoch_ignores_session_time_zone(zone: str) -> None:
    async with fresh_mariadb() as url:
        db = Database(url)
        try:
            async with db.engine.connect() as conn:
                await conn.execute(text("SET time_zone = :zone"), {"zone": zone})
                before = time.time()
                value = (await conn.execute(select(db_epoch()))).scalar_one()
                after = time.time()
        finally:
            await db.close()
    assert before - 1.0 <= value <= after + 1.0


def test_revision_ids_fit_alembics_version_column() -> None:
    # alembic_version.version_num is VARCHAR(32): MariaDB refuses to record a longer id.
    script = ScriptDirectory.from_config(alembic_config())
    too_long = [r.revision for r in script.walk_revisions() if len(r.revision) > 32]
    assert too_long == []
