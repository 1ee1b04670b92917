"""The InstanceOfferingVO and DiskOfferingVO tables (sizes in bytes)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from zstackpy.core.db.models import NOW, Base


class InstanceOfferingVO(Base):
    __tablename__ = "InstanceOfferingVO"
    # The query API's default order: paged queries walk this index instead of sorting.
    __table_args__ = (Index("ix_InstanceOfferingVO_create_date_uuid", "create_date", "uuid"),)

    uuid: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(255), index=True)
    description: Mapped[str | None] = mapped_column(Text)
    cpu_num: Mapped[int] = mapped_column(Integer)
    cpu_speed: Mapped[int] = mapped_column(Integer, default=0)
    memory_size: Mapped[int] = mapped_column(BigInteger)
    reserved_memory_size: Mapped[int] = mapped_column(BigInteger, default=0)
    allocator_strategy: Mapped[str | None] = mapped_column(String(128))
    sort_key: Mapped[int] = mapped_column(Integer, default=0)
    state: Mapped[str] = mapped_column(String(32), default="Enabled")
    type: Mapped[str] = mapped_column(String(32), default="UserVm")
    create_date: Mapped[datetime] = mapped_column(DateTime, server_default=NOW)
    last_op_date: Mapped[datetime] = mapped_column(DateTime, server_default=NOW, onupdate=NOW)


class DiskOfferingVO(Base):
    __tablename__ = "DiskOfferingVO"
    __table_args__ = (Index("ix_DiskOfferingVO_create_date_uuid", "create_date", "uuid"),)

    uuid: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(255), index=True)
    description: Mapped[str | None] = mapped_column(Text)
    disk_size: Mapped[int] = mapped_column(BigInteger)
    allocator_strategy: Mapped[str | None] = mapped_column(String(128))
    sort_key: Mapped[int] = mapped_column(Integer, default=0)
    state: Mapped[str] = mapped_column(String(32), default="Enabled")
    type: Mapped[str] = mapped_column(String(32), default="zstack")
    create_date: Mapped[datetime] = mapped_column(DateTime, server_default=NOW)
    last_op_date: Mapped[datetime] = mapped_column(DateTime, server_default=NOW, onupdate=NOW)
