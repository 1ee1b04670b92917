"""Backup storage (SFTP), zone attachment, images, instance and disk offerings.

Revision ID: 0008_storage_images
Revises: 0007_primary_storage
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008_storage_images"
down_revision: str | None = "0007_primary_storage"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NOW = sa.text("CURRENT_TIMESTAMP")


def _dates() -> list[sa.Column[object]]:
    return [
        sa.Column("create_date", sa.DateTime(), server_default=NOW, nullable=False),
        sa.Column("last_op_date", sa.DateTime(), server_default=NOW, nullable=False),
    ]


def _fk(
    table: str, column: str, target: str, ondelete: str | None = None
) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column], [f"{target}.uuid"], name=f"fk_{table}_{column}_{target}", ondelete=ondelete
    )


def _indexes(table: str, *columns: str, query_order: bool = True) -> None:
    """An index per lookup/FK column, and the query API's default order (createDate,
    uuid) for tables served by a query API (ref tables have no uuid)."""
    for column in columns:
        op.create_index(f"ix_{table}_{column}", table, [column])
    if query_order:
        op.create_index(f"ix_{table}_create_date_uuid", table, ["create_date", "uuid"])


def upgrade() -> None:
    op.create_table(
        "BackupStorageVO",
        sa.Column("uuid", sa.String(32), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("url", sa.String(2048), nullable=False),
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("total_capacity", sa.BigInteger(), nullable=False),
        sa.Column("available_capacity", sa.BigInteger(), nullable=False),
        *_dates(),
        sa.PrimaryKeyConstraint("uuid"),
    )
    _indexes("BackupStorageVO", "name", "type", "status")

    op.create_table(
        "BackupStorageZoneRefVO",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("backup_storage_uuid", sa.String(32), nullable=False),
        sa.Column("zone_uuid", sa.String(32), nullable=False),
        *_dates(),
        _fk("BackupStorageZoneRefVO", "backup_storage_uuid", "BackupStorageVO"),
        _fk("BackupStorageZoneRefVO", "zone_uuid", "ZoneVO"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint(
            "backup_storage_uuid",
            "zone_uuid",
            name="uq_BackupStorageZoneRefVO_backup_storage_uuid_zone_uuid",
        ),
    )
    _indexes("BackupStorageZoneRefVO", "backup_storage_uuid", "zone_uuid", query_order=False)

    op.create_table(
        "SftpBackupStorageVO",
        sa.Column("uuid", sa.String(32), nullable=False),
        sa.Column("hostname", sa.String(255), nullable=False),
        sa.Column("username", sa.String(255), nullable=False),
        sa.Column("password", sa.String(255), nullable=False),
        sa.Column("ssh_port", sa.Integer(), nullable=False),
        sa.Column("agent_token", sa.String(64), nullable=False),
        _fk("SftpBackupStorageVO", "uuid", "BackupStorageVO", ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("uuid"),
        sa.UniqueConstraint("hostname", name="uq_SftpBackupStorageVO_hostname"),
    )

    op.create_table(
        "ImageVO",
        sa.Column("uuid", sa.String(32), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("actual_size", sa.BigInteger(), nullable=False),
        sa.Column("md5_sum", sa.String(255), nullable=True),
        sa.Column("url", sa.String(2048), nullable=False),
        sa.Column("media_type", sa.String(64), nullable=False),
        sa.Column("guest_os_type", sa.String(255), nullable=True),
        sa.Column("type", sa.String(32), nullable=False),
        sa.Column("platform", sa.String(32), nullable=True),
        sa.Column("architecture", sa.String(32), nullable=True),
        sa.Column("format", sa.String(32), nullable=False),
        sa.Column("system", sa.Boolean(), nullable=False),
        sa.Column("virtio", sa.Boolean(), nullable=False),
        *_dates(),
        sa.PrimaryKeyConstraint("uuid"),
    )
    _indexes("ImageVO", "name", "status")

    op.create_table(
        "ImageBackupStorageRefVO",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("image_uuid", sa.String(32), nullable=False),
        sa.Column("backup_storage_uuid", sa.String(32), nullable=False),
        sa.Column("install_path", sa.String(2048), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        *_dates(),
        _fk("ImageBackupStorageRefVO", "image_uuid", "ImageVO"),
        _fk("ImageBackupStorageRefVO", "backup_storage_uuid", "BackupStorageVO"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint(
            "image_uuid",
            "backup_storage_uuid",
            name="uq_ImageBackupStorageRefVO_image_uuid_backup_storage_uuid",
        ),
    )
    _indexes(
        "ImageBackupStorageRefVO",
        "image_uuid",
        "backup_storage_uuid",
        "status",
        query_order=False,
    )

    op.create_table(
        "InstanceOfferingVO",
        sa.Column("uuid", sa.String(32), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("cpu_num", sa.Integer(), nullable=False),
        sa.Column("cpu_speed", sa.Integer(), nullable=False),
        sa.Column("memory_size", sa.BigInteger(), nullable=False),
        sa.Column("reserved_memory_size", sa.BigInteger(), nullable=False),
        sa.Column("allocator_strategy", sa.String(128), nullable=True),
        sa.Column("sort_key", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("type", sa.String(32), nullable=False),
        *_dates(),
        sa.PrimaryKeyConstraint("uuid"),
    )
    _indexes("InstanceOfferingVO", "name")

    op.create_table(
        "DiskOfferingVO",
        sa.Column("uuid", sa.String(32), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("disk_size", sa.BigInteger(), nullable=False),
        sa.Column("allocator_strategy", sa.String(128), nullable=True),
        sa.Column("sort_key", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("type", sa.String(32), nullable=False),
        *_dates(),
        sa.PrimaryKeyConstraint("uuid"),
    )
    _indexes("DiskOfferingVO", "name")


def downgrade() -> None:
    for table in (
        "DiskOfferingVO",
        "InstanceOfferingVO",
        "ImageBackupStorageRefVO",
        "ImageVO",
        "SftpBackupStorageVO",
        "BackupStorageZoneRefVO",
        "BackupStorageVO",
    ):
        op.drop_table(table)
