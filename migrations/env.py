"""Alembic environment: async engines via zstackpy's Database, batch mode on SQLite.

Run by ``zstackpy.core.db.migrate`` inside a worker thread (it owns the event loop it makes
with ``asyncio.run``). The URL comes from the Config's ``attributes["url"]``, else from
ZSTACK_DB_URL.
"""

from __future__ import annotations

import asyncio
import os

from alembic import context
from sqlalchemy.engine import Connection, make_url

import zstackpy.all_models  # noqa: F401  -- every table joins Base.metadata
from zstackpy.core.db.engine import Database
from zstackpy.core.db.models import Base

target_metadata = Base.metadata


def _url() -> str:
    url = context.config.attributes.get("url") or os.environ.get("ZSTACK_DB_URL")
    if not url:
        raise RuntimeError("no database URL: pass one to upgrade() or set ZSTACK_DB_URL")
    return str(url)


def _is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def run_migrations_offline() -> None:
    url = _url()
    context.configure(
        url=url,
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=_is_sqlite(url),
    )
    with context.begin_transaction():
        context.run_migrations()


def do_run_migrations(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        # SQLite cannot ALTER most things; batch mode copies the table instead.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def run_migrations_online() -> None:
    db = Database(_url())
    try:
        async with db.engine.connect() as connection:
            await connection.run_sync(do_run_migrations)
            await connection.commit()
    finally:
        await db.close()


if context.is_offline_mode():
    run_migrations_offline()
else:
    # Load every revision script now, before this thread's loop runs: alembic would read
    # them lazily from inside it, and file reads on a running loop are what the test suite's
    # blockbuster refuses (harmless here, as the loop is this thread's own, but noisy).
    context.script.revision_map.get_revisions("heads")
    asyncio.run(run_migrations_online())
