"""Identity tables: accounts and their sessions. Migration: 0002_identity.

Dates are naive UTC (``DateTime`` without a zone), as the kernel's tables are.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from zstackpy.core.db.models import NOW, Base


class AccountVO(Base):
    """An account. ``password_hash`` is argon2 of the SHA-512 hex digest the client sends;
    the digest itself is never stored."""

    __tablename__ = "AccountVO"
    # The unique name is what makes two nodes bootstrapping "admin" at once safe.
    __table_args__ = (UniqueConstraint("name"),)

    uuid: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    type: Mapped[str] = mapped_column(String(32), index=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    description: Mapped[str | None] = mapped_column(String(2048))
    create_date: Mapped[datetime] = mapped_column(DateTime, server_default=NOW)
    last_op_date: Mapped[datetime] = mapped_column(DateTime, server_default=NOW, onupdate=NOW)


class SessionVO(Base):
    """A logged-in session; valid until ``expired_date`` (UTC), then purged."""

    __tablename__ = "SessionVO"

    uuid: Mapped[str] = mapped_column(String(32), primary_key=True)
    # CASCADE: a session never outlives its account, even if a delete forgets it.
    account_uuid: Mapped[str] = mapped_column(
        String(32), ForeignKey("AccountVO.uuid", ondelete="CASCADE"), index=True
    )
    user_uuid: Mapped[str | None] = mapped_column(String(32))
    expired_date: Mapped[datetime] = mapped_column(DateTime, index=True)
    create_date: Mapped[datetime] = mapped_column(DateTime, server_default=NOW)
