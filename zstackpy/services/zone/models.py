"""The ZoneVO table."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, DateTime, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from zstackpy.core.db.models import NOW, Base


class ZoneVO(Base):
    __tablename__ = "ZoneVO"
    # The query API's default order: paged queries walk this index instead of sorting.
    __table_args__ = (Index("ix_ZoneVO_create_date_uuid", "create_date", "uuid"),)

    uuid: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(255), index=True)
    description: Mapped[str | None] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(32), default="Enabled")
    type: Mapped[str] = mapped_column(String(32), default="zstack")
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)
    create_date: Mapped[datetime] = mapped_column(DateTime, server_default=NOW)
    last_op_date: Mapped[datetime] = mapped_column(DateTime, server_default=NOW, onupdate=NOW)
