"""Tables of the volumes, their snapshots, and the image cache on primary storage.

Sizes are bytes. A volume's ``size`` is also what it reserved on its primary storage (and
on its host's books for local storage): deleting it gives exactly that back. A snapshot
reserves its own ``size`` the same way. An image cache entry reserves the image's
``size`` once per (storage, host) until it is removed.

Some columns name rows of other domains without a foreign key, on purpose:
``vm_instance_uuid`` (the VM table comes later in the migration chain), ``host_uuid`` (a
local-storage volume may still be being deleted while its host's cascade removes the
host row), ``root_image_uuid`` and ``disk_offering_uuid`` (ZStack keeps a volume whose
image or offering is deleted). They are indexed all the same.
"""

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
from sqlalchemy.orm import Mapped, mapped_column

from zstackpy.core.db.models import NOW, Base


class VolumeVO(Base):
    __tablename__ = "VolumeVO"
    # The query API's default order: paged queries walk this index instead of sorting.
    __table_args__ = (Index("ix_VolumeVO_create_date_uuid", "create_date", "uuid"),)

    uuid: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(255), index=True)
    description: Mapped[str | None] = mapped_column(Text)
    # None while NotInstantiated (a data volume created without a VM, never attached).
    primary_storage_uuid: Mapped[str | None] = mapped_column(
        String(32), ForeignKey("PrimaryStorageVO.uuid"), index=True
    )
    host_uuid: Mapped[str | None] = mapped_column(String(32), index=True)
    vm_instance_uuid: Mapped[str | None] = mapped_column(String(32), index=True)
    last_vm_instance_uuid: Mapped[str | None] = mapped_column(String(32))
    disk_offering_uuid: Mapped[str | None] = mapped_column(String(32), index=True)
    root_image_uuid: Mapped[str | None] = mapped_column(String(32), index=True)
    install_path: Mapped[str | None] = mapped_column(String(2048))
    type: Mapped[str] = mapped_column(String(32), index=True)  # Root / Data
    format: Mapped[str] = mapped_column(String(32), default="qcow2")
    size: Mapped[int] = mapped_column(BigInteger, default=0)
    actual_size: Mapped[int] = mapped_column(BigInteger, default=0)
    device_id: Mapped[int | None] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(32), default="Enabled")
    status: Mapped[str] = mapped_column(String(32), index=True)
    is_shareable: Mapped[bool] = mapped_column(Boolean, default=False)
    last_attach_date: Mapped[datetime | None] = mapped_column(DateTime)
    last_detach_date: Mapped[datetime | None] = mapped_column(DateTime)
    create_date: Mapped[datetime] = mapped_column(DateTime, server_default=NOW)
    last_op_date: Mapped[datetime] = mapped_column(DateTime, server_default=NOW, onupdate=NOW)


class VolumeSnapshotVO(Base):
    """One snapshot of a volume (ZStack's VolumeSnapshotVO). Snapshots of one volume form
    a tree (``tree_uuid``, ``parent_uuid``, ``distance`` from the root); ``latest`` marks
    the one the volume's current file grows from."""

    __tablename__ = "VolumeSnapshotVO"
    __table_args__ = (Index("ix_VolumeSnapshotVO_create_date_uuid", "create_date", "uuid"),)

    uuid: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(255), index=True)
    description: Mapped[str | None] = mapped_column(Text)
    type: Mapped[str] = mapped_column(String(32), default="Hypervisor")
    volume_uuid: Mapped[str] = mapped_column(String(32), ForeignKey("VolumeVO.uuid"), index=True)
    primary_storage_uuid: Mapped[str] = mapped_column(
        String(32), ForeignKey("PrimaryStorageVO.uuid"), index=True
    )
    host_uuid: Mapped[str | None] = mapped_column(String(32), index=True)
    primary_storage_install_path: Mapped[str] = mapped_column(String(2048))
    volume_type: Mapped[str] = mapped_column(String(32))
    format: Mapped[str] = mapped_column(String(32), default="qcow2")
    size: Mapped[int] = mapped_column(BigInteger, default=0)
    tree_uuid: Mapped[str] = mapped_column(String(32), index=True)
    parent_uuid: Mapped[str | None] = mapped_column(String(32), index=True)
    distance: Mapped[int] = mapped_column(Integer, default=0)
    latest: Mapped[bool] = mapped_column(Boolean, default=True)
    state: Mapped[str] = mapped_column(String(32), default="Enabled")
    status: Mapped[str] = mapped_column(String(32), default="Ready")
    create_date: Mapped[datetime] = mapped_column(DateTime, server_default=NOW)
    last_op_date: Mapped[datetime] = mapped_column(DateTime, server_default=NOW, onupdate=NOW)


class ImageCacheVO(Base):
    """An image copied from backup storage onto a primary storage (on one host for local
    storage, ``host_uuid`` None for shared storage), from which root volumes are cloned.

    The unique index holds for local storage; for shared storage (NULL host) the cache's
    work queue keeps one row per (storage, image)."""

    __tablename__ = "ImageCacheVO"
    __table_args__ = (UniqueConstraint("primary_storage_uuid", "host_uuid", "image_uuid"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    primary_storage_uuid: Mapped[str] = mapped_column(
        String(32), ForeignKey("PrimaryStorageVO.uuid"), index=True
    )
    host_uuid: Mapped[str | None] = mapped_column(String(32), index=True)
    image_uuid: Mapped[str] = mapped_column(String(32), index=True)
    install_url: Mapped[str] = mapped_column(String(2048))
    size: Mapped[int] = mapped_column(BigInteger, default=0)
    md5_sum: Mapped[str | None] = mapped_column(String(255))
    create_date: Mapped[datetime] = mapped_column(DateTime, server_default=NOW)
    last_op_date: Mapped[datetime] = mapped_column(DateTime, server_default=NOW, onupdate=NOW)
