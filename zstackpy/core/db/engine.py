"""Database: one async engine and its session factory, tuned per dialect.

SQLite (``sqlite+aiosqlite:///path``) is the embedded default; MariaDB
(``mysql+asyncmy://user@host:3306/db``) is the clustered one. The node builds one Database at
start-up and closes it on the way out; services reach it as ``ctx.db``.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite
from sqlalchemy import event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import ConnectionPoolEntry

from zstackpy.core.db.group_commit import GroupCommit, Prepare, Unit
from zstackpy.core.db.mariadb_driver import install_idle_ping, transaction_aware_dbapi
from zstackpy.core.db.sqlite_driver import one_hop_dbapi

SQLITE_BUSY_TIMEOUT_MS = 5000
# SQLite lets one writer in at a time: with a pool of several connections, concurrent
# writers only wait in SQLite's busy handler (sleeps with back-off) and fail with "database
# is locked" past the busy timeout (a burst of 10,000 VM creations did). One connection
# queues transactions in the pool, in order, with no lock contention at all; transactions
# are short and none waits on the bus while it holds the connection.
SQLITE_POOL_SIZE = 1
# Waiting for that connection behind a burst of thousands of transactions takes seconds.
SQLITE_POOL_TIMEOUT_S = 120
# Read sessions get connections of their own (query_only): in WAL mode readers never wait
# for the writer nor each other, and each runs in its own thread, so queries and the pings'
# reads no longer queue behind every write on the one connection.
SQLITE_READ_POOL_SIZE = 3

# MariaDB drops idle connections after wait_timeout (8 h by default) and proxies sooner;
# recycling well before that, plus the idle ping, means a pooled connection is never dead.
MARIADB_POOL_RECYCLE_S = 1800
MARIADB_POOL_SIZE = 10
MARIADB_MAX_OVERFLOW = 20
# The read sessions' own pool (autocommit connections, see read_session).
MARIADB_READ_POOL_SIZE = 5
MARIADB_READ_MAX_OVERFLOW = 15
# The heartbeat's own connection (one, kept open): under load every pooled connection can
# be busy and an overflow one must first be opened, and a heartbeat that waits a second for
# either is a second closer to its node's eviction.
MARIADB_HEARTBEAT_POOL_SIZE = 1
# Group-commit batches written at once, at most: SQLite has one connection (one writer)
# anyway; on MariaDB a backlog of more than one batch is written by a few writers at once,
# whose round trips overlap, leaving most of the pool to reads.
MARIADB_GROUP_WRITERS = 4

T = TypeVar("T")


class Database:
    """An AsyncEngine plus ``session()``; ``close()`` disposes of the pool."""

    def __init__(self, url: str | URL, *, echo: bool = False) -> None:
        self.url: URL = make_url(url)
        self.dialect: str = self.url.get_backend_name()
        if self.dialect == "sqlite":
            self.engine = self._sqlite_engine(echo)
        elif self.dialect in ("mysql", "mariadb"):
            self.engine = self._mariadb_engine(echo)
        else:
            self.engine = create_async_engine(self.url, echo=echo)
        self._sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        self._read_sessions = self._sessions
        self._read_engine: AsyncEngine | None = None
        # Bumped after each ANALYZE (core/db/statistics.py): pooled read connections
        # reload the planner's statistics at their next checkout.
        self.statistics_generation = 0
        if self.dialect == "sqlite" and not self._sqlite_in_memory():
            self._read_engine = self._sqlite_engine(
                echo, pool_size=SQLITE_READ_POOL_SIZE, read_only=True
            )
            event.listen(self._read_engine.sync_engine, "checkout", self._fresh_statistics)
            self._read_sessions = async_sessionmaker(self._read_engine, expire_on_commit=False)
        elif self.dialect in ("mysql", "mariadb"):
            self._read_engine = self._mariadb_engine(
                echo,
                isolation_level="AUTOCOMMIT",
                pool_size=MARIADB_READ_POOL_SIZE,
                max_overflow=MARIADB_READ_MAX_OVERFLOW,
            )
            self._read_sessions = async_sessionmaker(self._read_engine, expire_on_commit=False)
        self._heartbeat_engine: AsyncEngine | None = None
        self._heartbeat_sessions = self._sessions
        if self.dialect in ("mysql", "mariadb"):
            self._heartbeat_engine = self._mariadb_engine(
                echo, pool_size=MARIADB_HEARTBEAT_POOL_SIZE, max_overflow=0
            )
            self._heartbeat_sessions = async_sessionmaker(
                self._heartbeat_engine, expire_on_commit=False
            )
        writers = 1 if self.dialect == "sqlite" else MARIADB_GROUP_WRITERS
        self.group_commit = GroupCommit(
            self._sessions, read_sessions=self._read_sessions, writers=writers
        )

    def session(self) -> AsyncSession:
        """A new session; use as ``async with db.session() as s, s.begin(): ...``."""
        return self._sessions()

    def heartbeat_session(self) -> AsyncSession:
        """A session for the node's heartbeat rounds only: on MariaDB on a connection of
        their own, never waiting behind the node's other work for one (SQLite: the one
        writer's, as every write)."""
        return self._heartbeat_sessions()

    @property
    def engines(self) -> tuple[AsyncEngine, ...]:
        """Every engine statements run on (MariaDB: the read sessions' and the heartbeat's
        too), for listeners that must see them all."""
        extra = (e for e in (self._read_engine, self._heartbeat_engine) if e is not None)
        return (self.engine, *extra)

    def read_session(self) -> AsyncSession:
        """A session for statements that only read (``async with db.read_session() as s``).

        On MariaDB its connections run in autocommit: no transaction opens, so none has to
        be ended (a read session was its statements plus a ROLLBACK round trip, about two a
        VM in a burst of creations). Each statement sees what was committed when it ran,
        as in the write sessions' READ COMMITTED; a write here would commit at once, so
        never write in it. On a SQLite file its connections are query-only ones of their
        own (WAL: reads run beside the writer, each statement seeing the last commit); on
        an in-memory SQLite database it is an ordinary session."""
        return self._read_sessions()

    async def write(self, unit: Unit[T], *, prepare: Prepare | None = None) -> T:
        """Run the write transaction ``unit(session)``, maybe committed together with the
        units of concurrent tasks (group_commit: a unit only runs statements; ``prepare``
        adds rows whose database-made values the unit needs)."""
        return await self.group_commit.write(unit, prepare=prepare)

    async def read(self, unit: Unit[T]) -> T:
        """Run ``unit(session)``, which only reads, in a session maybe shared with the
        units of concurrent tasks (group_commit); treat the rows it returns as read-only."""
        return await self.group_commit.read(unit)

    def safe_url(self) -> str:
        """The URL with its password masked, for logs and error messages."""
        return self.url.render_as_string(hide_password=True)

    async def close(self) -> None:
        await self.group_commit.close()
        await self.engine.dispose()
        if self._read_engine is not None:
            await self._read_engine.dispose()
        if self._heartbeat_engine is not None:
            await self._heartbeat_engine.dispose()

    # ----- SQLite ----------------------------------------------------------------------

    def _fresh_statistics(self, dbapi_conn: Any, record: ConnectionPoolEntry, _proxy: Any) -> None:
        # SQLite loads a connection's statistics when it opens; another connection's
        # ANALYZE does not reach it until told (ANALYZE sqlite_schema reloads them).
        if record.info.get("statistics") == self.statistics_generation:
            return
        cursor = dbapi_conn.cursor()
        try:
            # query_only refuses even this (it changes nothing on disk).
            cursor.execute("PRAGMA query_only=OFF")
            try:
                cursor.execute("ANALYZE sqlite_schema")
            finally:
                cursor.execute("PRAGMA query_only=ON")
        finally:
            cursor.close()
        record.info["statistics"] = self.statistics_generation

    def _sqlite_in_memory(self) -> bool:
        database = self.url.database or ""
        return database in ("", ":memory:") or self.url.query.get("mode") == "memory"

    def _sqlite_engine(
        self, echo: bool, *, pool_size: int = SQLITE_POOL_SIZE, read_only: bool = False
    ) -> AsyncEngine:
        # One trip to aiosqlite's thread per statement instead of four (sqlite_driver).
        kwargs: dict[str, Any] = {"module": one_hop_dbapi()}
        if not self._sqlite_in_memory():
            kwargs["async_creator"] = self._sqlite_connector(self.url.database or "")
            kwargs["pool_size"] = pool_size
            kwargs["max_overflow"] = 0
            kwargs["pool_timeout"] = SQLITE_POOL_TIMEOUT_S
        engine = create_async_engine(self.url, echo=echo, **kwargs)
        event.listen(engine.sync_engine, "connect", _sqlite_on_connect)
        if read_only:
            event.listen(engine.sync_engine, "connect", _sqlite_query_only)
        return engine

    def _sqlite_connector(self, database: str) -> Any:
        # The parent directory is made on first connect, in a thread: Database() is often
        # built on the event loop, where a mkdir would block it. create_connect_args goes
        # there too (it calls os.path.abspath).
        path = Path(database)
        url = self.url
        dialect = url.get_dialect()()
        args: list[tuple[list[Any], dict[str, Any]]] = []

        def prepare() -> tuple[list[Any], dict[str, Any]]:
            path.parent.mkdir(parents=True, exist_ok=True)
            cargs, cparams = dialect.create_connect_args(url)
            return list(cargs), dict(cparams)

        async def connect() -> aiosqlite.Connection:
            if not args:
                args.append(await asyncio.to_thread(prepare))
            cargs, cparams = args[0]
            conn = aiosqlite.connect(*cargs, **cparams)
            # As SQLAlchemy does for its own connects: a forgotten connection must not keep
            # the process alive at exit.
            conn._thread.daemon = True
            return await conn

        return connect

    # ----- MariaDB ---------------------------------------------------------------------

    def _mariadb_engine(
        self,
        echo: bool,
        *,
        isolation_level: str = "READ COMMITTED",
        pool_size: int = MARIADB_POOL_SIZE,
        max_overflow: int = MARIADB_MAX_OVERFLOW,
    ) -> AsyncEngine:
        url = self.url
        if "charset" not in url.query:
            url = url.update_query_dict({"charset": "utf8mb4"})
        engine = create_async_engine(
            url,
            echo=echo,
            # No commit or rollback round trip with nothing to end, and a ping only for
            # connections that sat idle (mariadb_driver), instead of pool_pre_ping's ping
            # at every checkout.
            module=transaction_aware_dbapi(),
            pool_recycle=MARIADB_POOL_RECYCLE_S,
            pool_size=pool_size,
            max_overflow=max_overflow,
            # Short transactions that read what other nodes just committed; REPEATABLE READ
            # would add gap locks and stale snapshots for no benefit.
            isolation_level=isolation_level,
        )
        event.listen(engine.sync_engine, "connect", _mariadb_on_connect)
        install_idle_ping(engine)
        return engine


def _sqlite_on_connect(dbapi_conn: Any, _record: ConnectionPoolEntry) -> None:
    cursor = dbapi_conn.cursor()
    try:
        # The busy timeout first: switching to WAL takes a lock that another connection
        # may briefly hold, and it should wait for it like every later statement does.
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        # WAL: readers never block the writer; NORMAL is durable across crashes of the
        # process (not of the OS) in WAL mode and much faster than FULL.
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
    finally:
        cursor.close()


def _sqlite_query_only(dbapi_conn: Any, _record: ConnectionPoolEntry) -> None:
    # A read session that wrote would commit behind the writer's back: refuse it instead.
    cursor = dbapi_conn.cursor()
    try:
        cursor.execute("PRAGMA query_only=ON")
    finally:
        cursor.close()


def _mariadb_on_connect(dbapi_conn: Any, _record: ConnectionPoolEntry) -> None:
    cursor = dbapi_conn.cursor()
    try:
        # DATETIME defaults (CURRENT_TIMESTAMP) are then UTC whatever the server's zone, the
        # same as on SQLite; db_epoch() does not depend on it.
        cursor.execute("SET time_zone = '+00:00'")
    finally:
        cursor.close()
