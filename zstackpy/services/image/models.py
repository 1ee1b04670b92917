"""The ImageVO table and ImageBackupStorageRefVO (where each image's file is). Sizes in
bytes."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
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


class ImageVO(Base):
    __tablename__ = "ImageVO"
    # The query API's default order: paged queries walk this index instead of sorting.
    __table_args__ = (Index("ix_ImageVO_create_date_uuid", "create_date", "uuid"),)

    uuid: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(255), index=True)
    description: Mapped[str | None] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(32), default="Enabled")
    status: Mapped[str] = mapped_column(String(32), default="Downloading", index=True)
    size: Mapped[int] = mapped_column(BigInteger, default=0)
    actual_size: Mapped[int] = mapped_column(BigInteger, default=0)
    md5_sum: Mapped[str | None] = mapped_column(String(255))
    url: Mapped[str] = mapped_column(String(2048))
    media_type: Mapped[str] = mapped_column(String(64))
    guest_os_type: Mapped[str | None] = mapped_column(String(255))
    type: Mapped[str] = mapped_column(String(32), default="zstack")
    platform: Mapped[str | None] = mapped_column(String(32))
    architecture: Mapped[str | None] = mapped_column(String(32))
    format: Mapped[str] = mapped_column(String(32))
    system: Mapped[bool] = mapped_column(Boolean, default=False)
    virtio: Mapped[bool] = mapped_column(Boolean, default=True)
    create_date: Mapped[datetime] = mapped_column(DateTime, server_default=NOW)
    last_op_date: Mapped[datetime] = mapped_column(DateTime, server_default=NOW, onupdate=NOW)

    # Loaded only on request (selectinload): an accidental lazy load fails loudly instead
    # of blocking the event loop.
    backup_storage_refs: Mapped[list[ImageBackupStorageRefVO]] = relationship(
        lazy="raise", viewonly=True, order_by="ImageBackupStorageRefVO.id"
    )


class ImageBackupStorageRefVO(Base):
    __tablename__ = "ImageBackupStorageRefVO"
    __table_args__ = (UniqueConstraint("image_uuid", "backup_storage_uuid"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    image_uuid: Mapped[str] = mapped_column(String(32), ForeignKey("ImageVO.uuid"), index=True)
    backup_storage_uuid: Mapped[str] = mapped_column(
        String(32), ForeignKey("BackupStorageVO.uuid"), index=True
    )
    install_path: Mapped[str] = mapped_column(String(2048))
    status: Mapped[str] = mapped_column(String(32), default="Downloading", index=True)
    create_date: Mapped[datetime] = mapped_column(DateTime, server_default=NOW)
    last_op_date: Mapped[datetime] = mapped_column(DateTime, server_default=NOW, onupdate=NOW)
