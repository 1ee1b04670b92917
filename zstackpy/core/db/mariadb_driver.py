"""SQLAlchemy's asyncmy adapter, with no round trip to MariaDB for a commit or rollback
that has nothing to end, and a liveness ping only for connections that sat idle.

SQLAlchemy ends every checkout with a rollback (the pool's reset) and a session ends with
one more; with ``pool_pre_ping`` every checkout also pings. A read-only session was four
round trips for its one statement (ping, statement, rollback, rollback), a write four for
its commit. MariaDB reports in each reply whether a transaction is open
(``SERVER_STATUS_IN_TRANS``, kept by asyncmy): a commit or rollback is sent only when one
is, or when a statement failed since the last one (an error reply carries no status, and
the failed statement may have opened a transaction and taken locks).

A connection is pinged at checkout only after ``IDLE_PING_S`` unused in the pool: a busy
pool's connections are proven by the statements they just ran; a server restart fails at
most the statements in flight, and SQLAlchemy then renews the whole pool.

The engine uses it through ``create_async_engine(..., module=idle_aware_asyncmy_dbapi())``
and ``install_idle_ping(engine)``: the dialect, URLs, pooling and error translation stay
SQLAlchemy's own.
"""

from __future__ import annotations

import time
from typing import Any, NoReturn

import asyncmy
from sqlalchemy import event, exc
from sqlalchemy.dialects.mysql.asyncmy import (
    AsyncAdapt_asyncmy_connection,
    AsyncAdapt_asyncmy_dbapi,
)
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import ConnectionPoolEntry, PoolProxiedConnection
from sqlalchemy.util.concurrency import await_

# A pooled connection unused for longer than this is pinged before it is handed out.
IDLE_PING_S = 5.0
_IDLE_SINCE = "zstackpy.idle_since"


class TransactionAwareConnection(AsyncAdapt_asyncmy_connection):
    __slots__ = ("_failed",)

    def __init__(self, dbapi: Any, connection: Any) -> None:
        super().__init__(dbapi, connection)
        self._failed = False

    def _handle_exception(self, error: Exception) -> NoReturn:
        self._failed = True
        super()._handle_exception(error)

    def _must_end(self) -> bool:
        return self._failed or bool(self._connection.get_transaction_status())

    def rollback(self) -> None:
        if self._must_end():
            super().rollback()
            self._failed = False

    def commit(self) -> None:
        if self._must_end():
            super().commit()
            self._failed = False


class TransactionAwareDbapi(AsyncAdapt_asyncmy_dbapi):
    def connect(self, *arg: Any, **kw: Any) -> TransactionAwareConnection:
        creator_fn = kw.pop("async_creator_fn", self.asyncmy.connect)
        connection: TransactionAwareConnection = await_(
            TransactionAwareConnection.create(self, creator_fn(*arg, **kw))
        )
        return connection


def transaction_aware_dbapi() -> TransactionAwareDbapi:
    return TransactionAwareDbapi(asyncmy)


def install_idle_ping(engine: AsyncEngine) -> None:
    """Ping pooled connections at checkout only when they were idle over IDLE_PING_S."""
    event.listen(engine.sync_engine, "checkin", _note_idle)
    event.listen(engine.sync_engine, "checkout", _ping_if_idle)


def _note_idle(_dbapi_conn: Any, record: ConnectionPoolEntry) -> None:
    record.info[_IDLE_SINCE] = time.monotonic()


def _ping_if_idle(
    dbapi_conn: Any, record: ConnectionPoolEntry, _proxy: PoolProxiedConnection
) -> None:
    idle_since = record.info.get(_IDLE_SINCE)
    if idle_since is None or time.monotonic() - idle_since <= IDLE_PING_S:
        return
    try:
        dbapi_conn.ping()
    except Exception as error:
        # The pool takes this as "dead": it discards the connection and checks out another.
        raise exc.DisconnectionError(f"pooled connection failed its ping: {error}") from error
