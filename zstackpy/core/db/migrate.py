"""Schema migrations: alembic, driven from code (no alembic.ini).

The scripts live in the repository's top-level ``migrations/`` directory, or wherever
``ZSTACK_MIGRATIONS_DIR`` points. Alembic's command API is synchronous, so ``upgrade`` runs it
in a worker thread; ``migrations/env.py`` runs its own event loop there.
"""

from __future__ import annotations

import asyncio
import functools
import os
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.script.revision import RevisionError
from alembic.util import CommandError
from sqlalchemy.engine import Connection

import zstackpy
from zstackpy.core.db.engine import Database
from zstackpy.core.errors import KernelErr, ZError

MIGRATIONS_DIR_ENV = "ZSTACK_MIGRATIONS_DIR"
DB_URL_ENV = "ZSTACK_DB_URL"


def migrations_dir() -> Path:
    override = os.environ.get(MIGRATIONS_DIR_ENV)
    if override:
        return Path(override)
    return Path(zstackpy.__file__).parent.parent / "migrations"


def alembic_config(url: str | None = None) -> Config:
    """An in-memory alembic Config; env.py reads the URL from ``attributes["url"]``."""
    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir()))
    if url is not None:
        # Passed as an attribute, not a main option: ConfigParser would interpolate any '%'
        # of a URL-encoded password.
        cfg.attributes["url"] = url
    return cfg


async def upgrade(url: str, revision: str = "head") -> None:
    """Bring the database at ``url`` to ``revision``; a no-op when it is already there."""
    cfg = alembic_config(url)
    await asyncio.to_thread(command.upgrade, cfg, revision)


def head_revision() -> str:
    """The head revision of the migration scripts. Reads files: call off the event loop."""
    return _head_revision(migrations_dir())


@functools.cache
def _head_revision(directory: Path) -> str:
    cfg = Config()
    cfg.set_main_option("script_location", str(directory))
    head = ScriptDirectory.from_config(cfg).get_current_head()
    if head is None:
        raise RuntimeError(f"no migration scripts in {directory}")
    return head


async def current_revision(db: Database) -> str | None:
    """The revision the database is at; None for a database never migrated."""

    def read(conn: Connection) -> str | None:
        return MigrationContext.configure(conn).get_current_revision()

    async with db.engine.connect() as conn:
        return await conn.run_sync(read)


async def ensure_at_head(db: Database) -> None:
    """Raise ZError(DB_SCHEMA_NOT_AT_HEAD) unless the schema is at the head revision.

    The node calls this before starting any service: code and schema must agree.
    """
    head = await asyncio.to_thread(head_revision)
    current = await current_revision(db)
    if current == head:
        return
    url = db.safe_url()
    if current is not None and not await asyncio.to_thread(_is_known, current):
        # Upgrading cannot help: a newer release migrated this database.
        raise ZError(
            KernelErr.DB_SCHEMA_NOT_AT_HEAD,
            f"the database schema is at revision {current!r}, which this code does not know "
            f"(its newest is {head!r}); run the release that migrated it, or a newer one",
            current=current,
            head=head,
            url=url,
        )
    shown = "empty (never migrated)" if current is None else f"at revision {current!r}"
    raise ZError(
        KernelErr.DB_SCHEMA_NOT_AT_HEAD,
        f"the database schema is {shown} but this code needs revision {head!r}; "
        f"run `{DB_URL_ENV}={url} zstackpy db upgrade` to bring it to head "
        f"(back up the database first)",
        current=current,
        head=head,
        url=url,
    )


def _is_known(revision: str) -> bool:
    cfg = alembic_config()
    try:
        return ScriptDirectory.from_config(cfg).get_revision(revision) is not None
    except (CommandError, RevisionError):
        return False
