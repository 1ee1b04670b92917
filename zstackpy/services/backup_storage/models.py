"""The BackupStorageVO table (every type's common columns) and BackupStorageZoneRefVO
(which zones a backup storage serves). Type plugins add a table joined on ``uuid``, as
ZStack's SftpBackupStorageVO extends BackupStorageVO. Capacities are bytes."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from zstackpy.core.db.models import NOW, Base


class BackupStorageVO(Base):
    __tablename__ = "BackupStorageVO"
    # The query API's default order: paged queries walk this index instead of sorting.
    __table_args__ = (Index("ix_BackupStorageVO_create_date_uuid", "create_date", "uuid"),)

    uuid: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(255), index=True)
    description: Mapped[str | None] = mapped_column(Text)
    url: Mapped[str] = mapped_column(String(2048))  # the storage path on the machine
    type: Mapped[str] = mapped_column(String(64), index=True)
    state: Mapped[str] = mapped_column(String(32), default="Enabled")
    status: Mapped[str] = mapped_column(String(32), default="Connecting", index=True)
    total_capacity: Mapped[int] = mapped_column(BigInteger, default=0)
    available_capacity: Mapped[int] = mapped_column(BigInteger, default=0)
    create_date: Mapped[datetime] = mapped_column(DateTime, server_default=NOW)
    last_op_date: Mapped[datetime] = mapped_column(DateTime, server_default=NOW, onupdate=NOW)

    # Loaded only on request (selectinload): an accidental lazy load fails loudly instead
    # of blocking the event loop.
    zone_refs: Mapped[list[BackupStorageZoneRefVO]] = relationship(
        lazy="raise", viewonly=True, order_by="BackupStorageZoneRefVO.id"
    )

    @property
    def attached_zone_uuids(self) -> list[str]:
        """Needs ``zone_refs`` loaded (selectinload)."""
        return [ref.zone_uuid for ref in self.zone_refs]


class BackupStorageZoneRefVO(Base):
    __tablename__ = "BackupStorageZoneRefVO"
    __table_args__ = (UniqueConstraint("backup_storage_uuid", "zone_uuid"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    backup_storage_uuid: Mapped[str] = mapped_column(
        String(32), ForeignKey("BackupStorageVO.uuid"), index=True
    )
    zone_uuid: Mapped[str] = mapped_column(String(32), ForeignKey("ZoneVO.uuid"), index=True)
    create_date: Mapped[datetime] = mapped_column(DateTime, server_default=NOW)
    last_op_date: Mapped[datetime] = mapped_column(DateTime, server_default=NOW, onupdate=NOW)
