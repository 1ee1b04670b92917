"""VM instances, their NICs and the sequence of VM internal ids.

Revision ID: 0011_vm_instances
Revises: 0010_volumes
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0011_vm_instances"
down_revision: str | None = "0010_volumes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NOW = sa.text("CURRENT_TIMESTAMP")


def _dates() -> list[sa.Column[datetime]]:
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


def _indexes(table: str, *columns: str | tuple[str, ...]) -> None:
    for spec in columns:
        cols = list(spec) if isinstance(spec, tuple) else [spec]
        op.create_index(f"ix_{table}_{'_'.join(cols)}", table, cols)


def upgrade() -> None:
    op.create_table(
        "VmInstanceSequenceNumberVO",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("vm_instance_uuid", sa.String(32), nullable=False),
        sa.Column("create_date", sa.DateTime(), server_default=NOW, nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )

    table = "VmInstanceVO"
    op.create_table(
        table,
        sa.Column("uuid", sa.String(32), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("zone_uuid", sa.String(32), nullable=False),
        sa.Column("cluster_uuid", sa.String(32), nullable=True),
        sa.Column("host_uuid", sa.String(32), nullable=True),
        sa.Column("last_host_uuid", sa.String(32), nullable=True),
        sa.Column("instance_offering_uuid", sa.String(32), nullable=True),
        sa.Column("image_uuid", sa.String(32), nullable=True),
        sa.Column("root_volume_uuid", sa.String(32), nullable=True),
        sa.Column("default_l3_network_uuid", sa.String(32), nullable=True),
        sa.Column("type", sa.String(32), nullable=False),
        sa.Column("hypervisor_type", sa.String(32), nullable=True),
        sa.Column("cpu_num", sa.Integer(), nullable=False),
        sa.Column("cpu_speed", sa.BigInteger(), nullable=False),
        sa.Column("memory_size", sa.BigInteger(), nullable=False),
        sa.Column("reserved_memory_size", sa.BigInteger(), nullable=False),
        sa.Column("platform", sa.String(32), nullable=True),
        sa.Column("architecture", sa.String(32), nullable=True),
        sa.Column("guest_os_type", sa.String(255), nullable=True),
        sa.Column("allocator_strategy", sa.String(128), nullable=True),
        sa.Column("internal_id", sa.BigInteger(), nullable=False),
        sa.Column("state", sa.String(32), nullable=False),
        *_dates(),
        _fk(table, "zone_uuid", "ZoneVO"),
        _fk(table, "cluster_uuid", "ClusterVO", "SET NULL"),
        _fk(table, "host_uuid", "HostVO", "SET NULL"),
        _fk(table, "last_host_uuid", "HostVO", "SET NULL"),
        _fk(table, "instance_offering_uuid", "InstanceOfferingVO", "SET NULL"),
        _fk(table, "image_uuid", "ImageVO", "SET NULL"),
        _fk(table, "default_l3_network_uuid", "L3NetworkVO", "SET NULL"),
        sa.PrimaryKeyConstraint("uuid"),
        sa.UniqueConstraint("internal_id", name="uq_VmInstanceVO_internal_id"),
    )
    _indexes(
        table,
        "name",
        "zone_uuid",
        "cluster_uuid",
        "host_uuid",
        "last_host_uuid",
        "instance_offering_uuid",
        "image_uuid",
        "root_volume_uuid",
        "default_l3_network_uuid",
        "hypervisor_type",
        "state",
        "last_op_date",
        ("create_date", "uuid"),
    )

    table = "VmNicVO"
    op.create_table(
        table,
        sa.Column("uuid", sa.String(32), nullable=False),
        sa.Column("vm_instance_uuid", sa.String(32), nullable=False),
        sa.Column("l3_network_uuid", sa.String(32), nullable=False),
        sa.Column("used_ip_uuid", sa.String(32), nullable=True),
        sa.Column("ip", sa.String(64), nullable=True),
        sa.Column("netmask", sa.String(64), nullable=True),
        sa.Column("gateway", sa.String(64), nullable=True),
        sa.Column("ip_version", sa.Integer(), nullable=False),
        sa.Column("mac", sa.String(17), nullable=False),
        sa.Column("device_id", sa.Integer(), nullable=False),
        sa.Column("internal_name", sa.String(128), nullable=False),
        sa.Column("hypervisor_type", sa.String(32), nullable=True),
        sa.Column("driver_type", sa.String(32), nullable=False),
        sa.Column("type", sa.String(32), nullable=False),
        sa.Column("state", sa.String(32), nullable=False),
        *_dates(),
        _fk(table, "vm_instance_uuid", "VmInstanceVO"),
        _fk(table, "l3_network_uuid", "L3NetworkVO"),
        sa.PrimaryKeyConstraint("uuid"),
        sa.UniqueConstraint("mac", name="uq_VmNicVO_mac"),
    )
    _indexes(
        table,
        "vm_instance_uuid",
        "l3_network_uuid",
        "used_ip_uuid",
        "ip",
        "internal_name",
        ("create_date", "uuid"),
    )


def downgrade() -> None:
    # Indexes go with their tables (MariaDB refuses to drop one a foreign key needs).
    op.drop_table("VmNicVO")
    op.drop_table("VmInstanceVO")
    op.drop_table("VmInstanceSequenceNumberVO")
