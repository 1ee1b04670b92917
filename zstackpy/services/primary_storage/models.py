"""Tables of the primary storage domain: the storage, its cluster attachments, and the
per-host books of host-local storage.

Capacity is in bytes. ``available_capacity`` is what the node may still hand out
(``total - what ZStack reserved``); the ``*_physical_*`` columns are what the agents last
reported about the disk itself. Capacity columns change only in the storage's capacity
queue (see ``capacity.py``).

``LocalStorageHostRefVO`` lives here rather than in ``local_storage``: a local storage's
totals are the sums of its host rows, and both change in one transaction of the storage's
capacity queue, so the books of a storage and of its hosts are one module's job.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from zstackpy.core.db.models import NOW, Base


class PrimaryStorageVO(Base):
    __tablename__ = "PrimaryStorageVO"
    # The query API's default order: paged queries walk this index instead of sorting.
    __table_args__ = (Index("ix_PrimaryStorageVO_create_date_uuid", "create_date", "uuid"),)

    uuid: Mapped[str] = mapped_column(String(32), primary_key=True)
    zone_uuid: Mapped[str] = mapped_column(String(32), ForeignKey("ZoneVO.uuid"), index=True)
    name: Mapped[str] = mapped_column(String(255), index=True)
    description: Mapped[str | None] = mapped_column(Text)
    url: Mapped[str] = mapped_column(String(2048))
    type: Mapped[str] = mapped_column(String(32), index=True)
    state: Mapped[str] = mapped_column(String(32), default="Enabled", index=True)
    status: Mapped[str] = mapped_column(String(32), default="Connected", index=True)
    mount_path: Mapped[str | None] = mapped_column(String(2048))
    total_capacity: Mapped[int] = mapped_column(BigInteger, default=0)
    available_capacity: Mapped[int] = mapped_column(BigInteger, default=0)
    total_physical_capacity: Mapped[int] = mapped_column(BigInteger, default=0)
    available_physical_capacity: Mapped[int] = mapped_column(BigInteger, default=0)
    system_used_capacity: Mapped[int] = mapped_column(BigInteger, default=0)
    create_date: Mapped[datetime] = mapped_column(DateTime, server_default=NOW)
    last_op_date: Mapped[datetime] = mapped_column(DateTime, server_default=NOW, onupdate=NOW)

    # Loaded explicitly (selectinload) where an inventory needs attachedClusterUuids;
    # "raise" turns an accidental lazy load on the event loop into an error.
    cluster_refs: Mapped[list[PrimaryStorageClusterRefVO]] = relationship(
        lazy="raise", viewonly=True, order_by="PrimaryStorageClusterRefVO.id"
    )

    @property
    def attached_cluster_uuids(self) -> list[str]:
        """The inventory's ``attachedClusterUuids``; needs ``cluster_refs`` loaded."""
        return [ref.cluster_uuid for ref in self.cluster_refs]


class PrimaryStorageClusterRefVO(Base):
    """One attachment of a primary storage to a cluster (ZStack's PrimaryStorageClusterRefVO)."""

    __tablename__ = "PrimaryStorageClusterRefVO"
    __table_args__ = (
        Index(
            "uq_PrimaryStorageClusterRefVO_primary_storage_uuid_cluster_uuid",
            "primary_storage_uuid",
            "cluster_uuid",
            unique=True,
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    primary_storage_uuid: Mapped[str] = mapped_column(
        String(32),
        # Named by hand: the convention's name passes MariaDB's 64-character limit.
        ForeignKey("PrimaryStorageVO.uuid", name="fk_PrimaryStorageClusterRefVO_ps_uuid"),
        index=True,
    )
    cluster_uuid: Mapped[str] = mapped_column(String(32), ForeignKey("ClusterVO.uuid"), index=True)
    create_date: Mapped[datetime] = mapped_column(DateTime, server_default=NOW)
    last_op_date: Mapped[datetime] = mapped_column(DateTime, server_default=NOW, onupdate=NOW)


class LocalStorageHostRefVO(Base):
    """One host's disk in a host-local primary storage: its own books, summed into the
    storage's totals. Exists while the host is connected to a cluster the storage is
    attached to (made by attach or host connect, removed by detach or host delete)."""

    __tablename__ = "LocalStorageHostRefVO"

    primary_storage_uuid: Mapped[str] = mapped_column(
        String(32), ForeignKey("PrimaryStorageVO.uuid"), primary_key=True
    )
    host_uuid: Mapped[str] = mapped_column(
        String(32), ForeignKey("HostVO.uuid"), primary_key=True, index=True
    )
    total_capacity: Mapped[int] = mapped_column(BigInteger, default=0)
    available_capacity: Mapped[int] = mapped_column(BigInteger, default=0)
    total_physical_capacity: Mapped[int] = mapped_column(BigInteger, default=0)
    available_physical_capacity: Mapped[int] = mapped_column(BigInteger, default=0)
    create_date: Mapped[datetime] = mapped_column(DateTime, server_default=NOW)
    last_op_date: Mapped[datetime] = mapped_column(DateTime, server_default=NOW, onupdate=NOW)
