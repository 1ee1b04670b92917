"""SQLAlchemy's aiosqlite adapter, with each statement a single trip to the connection's
thread.

aiosqlite runs every sqlite3 call on a worker thread, one queued call at a time; SQLAlchemy's
stock cursor makes four of those trips per statement (open a cursor, execute, fetch all,
close), each a handoff to the thread and a wake-up of the event loop through its self-pipe.
Profiles of VM creation showed those handoffs as the biggest single cost of the node's
loop. Here one trip runs the whole statement in the thread and brings back the rows and
the cursor's attributes, and commits and rollbacks with no transaction open make no trip
at all; the event loop never blocks on SQLite either way.

The engine uses it through ``create_async_engine(..., module=ONE_HOP_DBAPI)``: the dialect,
URLs, pooling and error translation stay SQLAlchemy's own.
"""

from __future__ import annotations

import collections
import sqlite3
from collections.abc import Sequence
from typing import Any

import aiosqlite
from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_cursor,
    AsyncAdapt_aiosqlite_dbapi,
)
from sqlalchemy.util import EMPTY_DICT
from sqlalchemy.util.concurrency import await_

# (description, rowcount, lastrowid, rows): what a statement leaves on a sqlite3 cursor.
Outcome = tuple[Any, int, int | None, list[Any] | None]


def _run_statement(conn: sqlite3.Connection, operation: str, parameters: Any) -> Outcome:
    """On aiosqlite's thread: the statement from cursor to close."""
    cursor = conn.cursor()
    try:
        if parameters is None:
            cursor.execute(operation)
        else:
            cursor.execute(operation, parameters)
        rows = cursor.fetchall() if cursor.description else None
        return cursor.description, cursor.rowcount, cursor.lastrowid, rows
    finally:
        cursor.close()


def _run_many(conn: sqlite3.Connection, operation: str, parameters: Any) -> Outcome:
    cursor = conn.cursor()
    try:
        cursor.executemany(operation, parameters)
        return cursor.description, cursor.rowcount, cursor.lastrowid, None
    finally:
        cursor.close()


class OneHopCursor(AsyncAdapt_aiosqlite_cursor):
    """A client-side cursor whose statement runs in one trip; results are buffered, as the
    stock adapter buffers them too."""

    __slots__ = ("_outcome",)

    def __init__(self, adapt_connection: AsyncAdapt_aiosqlite_connection) -> None:
        # No aiosqlite cursor is opened: the statement gets a sqlite3 cursor on the thread.
        self._adapt_connection = adapt_connection
        self._connection = adapt_connection._connection
        self._cursor = None  # type: ignore[assignment]  # no driver cursor in this design
        self._soft_closed_memoized = EMPTY_DICT
        self._rows = collections.deque()
        self._outcome: Outcome = (None, -1, None, None)

    @property
    def description(self) -> Any:
        return self._outcome[0]

    @property
    def rowcount(self) -> int:
        return self._outcome[1]

    @property
    def lastrowid(self) -> int:
        return self._outcome[2] or 0

    @property
    def arraysize(self) -> int:
        return 1

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        pass

    def _trip(self, fn: Any, operation: str, parameters: Any) -> Any:
        conn: aiosqlite.Connection = self._connection  # type: ignore[assignment]  # aiosqlite's
        try:
            # aiosqlite's own queue to its thread (untyped): one call, one trip.
            trip = conn._execute(fn, conn._conn, operation, parameters)  # type: ignore[no-untyped-call]  # see above
            self._outcome = await_(trip)
        except Exception as error:
            self._adapt_connection._handle_exception(error)
        rows = self._outcome[3]
        self._rows = collections.deque(rows) if rows else collections.deque()

    def execute(self, operation: Any, parameters: Any = None) -> Any:
        return self._trip(_run_statement, operation, parameters)

    def executemany(self, operation: Any, seq_of_parameters: Any) -> Any:
        return self._trip(_run_many, operation, seq_of_parameters)

    async def _async_soft_close(self) -> None:
        return None  # nothing is open on the thread between trips

    def close(self) -> None:
        self._rows.clear()

    def nextset(self) -> None:
        return None

    def setinputsizes(self, *inputsizes: Any) -> None:
        return None

    def fetchall(self) -> Sequence[Any]:
        rows = list(self._rows)
        self._rows.clear()
        return rows


class OneHopConnection(AsyncAdapt_aiosqlite_connection):
    """Commits and rollbacks go to the thread only when a transaction is open.

    SQLAlchemy ends every checkout with a rollback (the pool's reset), and a session ends
    with one more: a read-only session made three trips for its one statement, a write
    two for its commit. sqlite3 opens a transaction only before a write, and reports it
    in ``in_transaction``, which the event loop may read between trips: nothing runs on
    the connection then (one statement at a time, each a whole trip)."""

    __slots__ = ()
    _cursor_cls = OneHopCursor  # type: ignore[assignment]  # a subclass; mypy reads the slot as invariant

    def _in_transaction(self) -> bool:
        driver = self._connection._connection  # aiosqlite's sqlite3 connection; None once closed
        return driver is not None and bool(driver.in_transaction)

    def rollback(self) -> None:
        if self._in_transaction():
            super().rollback()

    def commit(self) -> None:
        if self._in_transaction():
            super().commit()


class OneHopDbapi(AsyncAdapt_aiosqlite_dbapi):
    def connect(self, *arg: Any, **kw: Any) -> OneHopConnection:
        stock = super().connect(*arg, **kw)
        return OneHopConnection(self, stock._connection)


def one_hop_dbapi() -> OneHopDbapi:
    return OneHopDbapi(aiosqlite, sqlite3)
