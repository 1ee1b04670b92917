"""SystemTagVO and UserTagVO."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, DateTime, String
from sqlalchemy.orm import Mapped, mapped_column

from zstackpy.core.db.models import NOW, Base


class SystemTagVO(Base):
    __tablename__ = "SystemTagVO"

    uuid: Mapped[str] = mapped_column(String(32), primary_key=True)
    resource_uuid: Mapped[str] = mapped_column(String(32), index=True)
    resource_type: Mapped[str] = mapped_column(String(64), index=True)
    tag: Mapped[str] = mapped_column(String(1024))
    type: Mapped[str] = mapped_column(String(32), default="System")
    inherent: Mapped[bool] = mapped_column(Boolean, default=False)
    create_date: Mapped[datetime] = mapped_column(DateTime, server_default=NOW)
    last_op_date: Mapped[datetime] = mapped_column(DateTime, server_default=NOW, onupdate=NOW)


class UserTagVO(Base):
    __tablename__ = "UserTagVO"

    uuid: Mapped[str] = mapped_column(String(32), primary_key=True)
    resource_uuid: Mapped[str] = mapped_column(String(32), index=True)
    resource_type: Mapped[str] = mapped_column(String(64), index=True)
    tag: Mapped[str] = mapped_column(String(1024))
    type: Mapped[str] = mapped_column(String(32), default="User")
    create_date: Mapped[datetime] = mapped_column(DateTime, server_default=NOW)
    last_op_date: Mapped[datetime] = mapped_column(DateTime, server_default=NOW, onupdate=NOW)
