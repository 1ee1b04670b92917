"""Per-test MariaDB databases: a fresh ``zstack_t_<hex>`` schema, dropped afterwards.

Use as ``async with fresh_mariadb() as url:``. It calls require_server first, so outside CI a
laptop without MariaDB skips the test instead of failing it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

# Imported now, not lazily by SQLAlchemy on the first connect: asyncmy reads its package
# metadata when imported, a file read that would run on the event loop.
import asyncmy  # noqa: F401
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from tests.support.real_server import MARIADB_URL, require_server
from zstackpy.core.ids import new_uuid


async def require_mariadb() -> None:
    """require_server, off the event loop: its probe is a blocking socket connect."""
    url = make_url(MARIADB_URL)
    await asyncio.to_thread(require_server, "MariaDB", url.host or "127.0.0.1", url.port or 3306)


@asynccontextmanager
async def fresh_mariadb(prefix: str = "zstack_t_") -> AsyncIterator[str]:
    """Create a new database on the test server; yield its URL; drop it on the way out."""
    await require_mariadb()
    root_url = make_url(MARIADB_URL)
    name = f"{prefix}{new_uuid()}"
    # NullPool: the root engine lives for one test and must leave no connection behind.
    root = create_async_engine(root_url, poolclass=NullPool)
    try:
        async with root.begin() as conn:
            await conn.execute(text(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4"))
        try:
            yield root_url.set(database=name).render_as_string(hide_password=False)
        finally:
            async with root.begin() as conn:
                await conn.execute(text(f"DROP DATABASE IF EXISTS `{name}`"))
    finally:
        await root.dispose()
