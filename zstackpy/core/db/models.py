"""The kernel's tables. Class names end in VO as in ZStack; each table is named as its class.

Every lookup and foreign-key column is indexed; names come from the metadata's naming
convention, so a migration and the models always agree on them. Primary keys stay unnamed:
MariaDB calls every one PRIMARY and warns about any other name.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    DateTime,
    Double,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
}

# CURRENT_TIMESTAMP is the same SQL on SQLite and MariaDB and is UTC on both (Database pins
# MariaDB sessions to UTC).
NOW = text("CURRENT_TIMESTAMP")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class ResourceVO(Base):
    """One row per resource of any type: what tags, ownership and the query engine join."""

    __tablename__ = "ResourceVO"

    uuid: Mapped[str] = mapped_column(String(32), primary_key=True)
    resource_type: Mapped[str] = mapped_column(String(255), index=True)
    resource_name: Mapped[str | None] = mapped_column(String(255), index=True)
    account_uuid: Mapped[str | None] = mapped_column(String(32), index=True)
    create_date: Mapped[datetime] = mapped_column(DateTime, server_default=NOW)
    last_op_date: Mapped[datetime] = mapped_column(DateTime, server_default=NOW, onupdate=NOW)


class ManagementNodeVO(Base):
    """A management node and its heartbeat, in database-clock seconds (see db_epoch)."""

    __tablename__ = "ManagementNodeVO"

    uuid: Mapped[str] = mapped_column(String(32), primary_key=True)
    host_name: Mapped[str] = mapped_column(String(255))
    port: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(32))
    heartbeat: Mapped[float] = mapped_column(Double, index=True)
    joined_at: Mapped[float] = mapped_column(Double)
    create_date: Mapped[datetime] = mapped_column(DateTime, server_default=NOW)


class GlobalConfigVO(Base):
    """The stored value of one global config; ``value`` is its text form."""

    __tablename__ = "GlobalConfigVO"
    __table_args__ = (UniqueConstraint("category", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    category: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(128))
    value: Mapped[str] = mapped_column(Text)
    default_value: Mapped[str] = mapped_column(Text)
    description: Mapped[str] = mapped_column(Text)
    value_type: Mapped[str] = mapped_column(String(16))
