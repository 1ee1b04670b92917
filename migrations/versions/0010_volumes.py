"""Volumes, volume snapshots and the image cache on primary storage.

Revision ID: 0010_volumes
Revises: 0009_networks
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010_volumes"
down_revision: str | None = "0009_networks"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NOW = sa.text("CURRENT_TIMESTAMP")


def _dates() -> list[sa.Column[object]]:
    return [
        sa.Column("create_date", sa.DateTime(), server_default=NOW, nullable=False),
        sa.Column("last_op_date", sa.DateTime(), server_default=NOW, nullable=False),
    ]


def _fk(table: str, column: str, target: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column], [f"{target}.uuid"], name=f"fk_{table}_{column}_{target}"
    )


def _indexes(table: str, *columns: str, query_order: bool = True) -> None:
    for column in columns:
        op.create_index(f"ix_{table}_{column}", table, [column])
    if query_order:
        op.create_index(f"ix_{table}_create_date_uuid", table, ["create_date", "uuid"])


def upgrade() -> None:
    op.create_table(
        "VolumeVO",
        sa.Column("uuid", sa.String(32), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("primary_storage_uuid", sa.String(32), nullable=True),
        sa.Column("host_uuid", sa.String(32), nullable=True),
        sa.Column("vm_instance_uuid", sa.String(32), nullable=True),
        sa.Column("last_vm_instance_uuid", sa.String(32), nullable=True),
        sa.Column("disk_offering_uuid", sa.String(32), nullable=True),
        sa.Column("root_image_uuid", sa.String(32), nullable=True),
        sa.Column("install_path", sa.String(2048), nullable=True),
        sa.Column("type", sa.String(32), nullable=False),
        sa.Column("format", sa.String(32), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("actual_size", sa.BigInteger(), nullable=False),
        sa.Column("device_id", sa.Integer(), nullable=True),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("is_shareable", sa.Boolean(), nullable=False),
        sa.Column("last_attach_date", sa.DateTime(), nullable=True),
        sa.Column("last_detach_date", sa.DateTime(), nullable=True),
        *_dates(),
        _fk("VolumeVO", "primary_storage_uuid", "PrimaryStorageVO"),
        sa.PrimaryKeyConstraint("uuid"),
    )
    _indexes(
        "VolumeVO",
        "name",
        "primary_storage_uuid",
        "host_uuid",
        "vm_instance_uuid",
        "disk_offering_uuid",
        "root_image_uuid",
        "type",
        "status",
    )

    op.create_table(
        "VolumeSnapshotVO",
        sa.Column("uuid", sa.String(32), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("type", sa.String(32), nullable=False),
        sa.Column("volume_uuid", sa.String(32), nullable=False),
        sa.Column("primary_storage_uuid", sa.String(32), nullable=False),
        sa.Column("host_uuid", sa.String(32), nullable=True),
        sa.Column("primary_storage_install_path", sa.String(2048), nullable=False),
        sa.Column("volume_type", sa.String(32), nullable=False),
        sa.Column("format", sa.String(32), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("tree_uuid", sa.String(32), nullable=False),
        sa.Column("parent_uuid", sa.String(32), nullable=True),
        sa.Column("distance", sa.Integer(), nullable=False),
        sa.Column("latest", sa.Boolean(), nullable=False),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        *_dates(),
        _fk("VolumeSnapshotVO", "volume_uuid", "VolumeVO"),
        _fk("VolumeSnapshotVO", "primary_storage_uuid", "PrimaryStorageVO"),
        sa.PrimaryKeyConstraint("uuid"),
    )
    _indexes(
        "VolumeSnapshotVO",
        "name",
        "volume_uuid",
        "primary_storage_uuid",
        "host_uuid",
        "tree_uuid",
        "parent_uuid",
    )

    op.create_table(
        "ImageCacheVO",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("primary_storage_uuid", sa.String(32), nullable=False),
        sa.Column("host_uuid", sa.String(32), nullable=True),
        sa.Column("image_uuid", sa.String(32), nullable=False),
        sa.Column("install_url", sa.String(2048), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("md5_sum", sa.String(255), nullable=True),
        *_dates(),
        _fk("ImageCacheVO", "primary_storage_uuid", "PrimaryStorageVO"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint(
            "primary_storage_uuid",
            "host_uuid",
            "image_uuid",
            name="uq_ImageCacheVO_primary_storage_uuid_host_uuid_image_uuid",
        ),
    )
    _indexes("ImageCacheVO", "primary_storage_uuid", "host_uuid", "image_uuid", query_order=False)


def downgrade() -> None:
    for table in ("ImageCacheVO", "VolumeSnapshotVO", "VolumeVO"):
        op.drop_table(table)
