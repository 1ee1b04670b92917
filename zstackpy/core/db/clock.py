"""The database's clock, as float seconds since the Unix epoch.

Heartbeats are written and compared with ``db_epoch()`` so that the clocks of the management
nodes never matter: every timestamp that decides liveness comes from the one database.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Double
from sqlalchemy.exc import CompileError
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement


class DbEpoch(FunctionElement[float]):
    """``db_epoch()``: the database's current time, seconds since the epoch, sub-second."""

    type = Double()
    inherit_cache = True
    name = "db_epoch"


def db_epoch() -> DbEpoch:
    """Use in SQL: ``update(ManagementNodeVO).values(heartbeat=db_epoch())``."""
    return DbEpoch()


@compiles(DbEpoch)
def _default(element: DbEpoch, compiler: SQLCompiler, **kw: Any) -> str:
    raise CompileError(f"db_epoch() has no form for dialect {compiler.dialect.name!r}")


@compiles(DbEpoch, "mysql")
@compiles(DbEpoch, "mariadb")
def _mariadb(element: DbEpoch, compiler: SQLCompiler, **kw: Any) -> str:
    # UNIX_TIMESTAMP(dt) converts dt back from the session zone that NOW() was rendered in,
    # so the result does not depend on the zone (only a DST fold hour could blur it, and
    # Database pins sessions to UTC). DECIMAL -> DOUBLE so drivers return a float.
    return "CAST(UNIX_TIMESTAMP(NOW(6)) AS DOUBLE)"


@compiles(DbEpoch, "sqlite")
def _sqlite(element: DbEpoch, compiler: SQLCompiler, **kw: Any) -> str:
    # 2440587.5 is the Julian day of 1970-01-01T00:00Z; julianday('now') is UTC, ms precision.
    return "((julianday('now') - 2440587.5) * 86400.0)"
