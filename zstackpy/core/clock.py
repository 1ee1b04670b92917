"""The node's wall clock as the database stores dates: naive UTC."""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    """Now, naive UTC (every date column holds naive UTC)."""
    return datetime.now(UTC).replace(tzinfo=None)


def utcnow_seconds() -> datetime:
    """Now to the whole second: what a DATETIME column keeps of it on every database, so a
    copy kept in memory reads the same as the row."""
    return utcnow().replace(microsecond=0)
