"""Hosts: HostVO (capacity included) and KVMHostVO, its KVM subtype.

Revision ID: 0006_hosts
Revises: 0005_query_order_indexes
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_hosts"
down_revision: str | None = "0005_query_order_indexes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NOW = sa.text("CURRENT_TIMESTAMP")

_HOST_INDEXES = (
    ("ix_HostVO_zone_uuid", ["zone_uuid"]),
    ("ix_HostVO_cluster_uuid", ["cluster_uuid"]),
    ("ix_HostVO_name", ["name"]),
    ("ix_HostVO_hypervisor_type", ["hypervisor_type"]),
    ("ix_HostVO_state", ["state"]),
    ("ix_HostVO_status", ["status"]),
    ("ix_HostVO_create_date_uuid", ["create_date", "uuid"]),
)


def upgrade() -> None:
    op.create_table(
        "HostVO",
        sa.Column("uuid", sa.String(32), nullable=False),
        sa.Column("zone_uuid", sa.String(32), nullable=False),
        sa.Column("cluster_uuid", sa.String(32), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("management_ip", sa.String(255), nullable=False),
        sa.Column("hypervisor_type", sa.String(32), nullable=False),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("architecture", sa.String(32), nullable=True),
        sa.Column("cpu_num", sa.Integer(), nullable=False),
        sa.Column("cpu_sockets", sa.Integer(), nullable=False),
        sa.Column("total_cpu_capacity", sa.BigInteger(), nullable=False),
        sa.Column("available_cpu_capacity", sa.BigInteger(), nullable=False),
        sa.Column("total_physical_memory", sa.BigInteger(), nullable=False),
        sa.Column("total_memory_capacity", sa.BigInteger(), nullable=False),
        sa.Column("available_memory_capacity", sa.BigInteger(), nullable=False),
        sa.Column("create_date", sa.DateTime(), server_default=NOW, nullable=False),
        sa.Column("last_op_date", sa.DateTime(), server_default=NOW, nullable=False),
        sa.ForeignKeyConstraint(["zone_uuid"], ["ZoneVO.uuid"], name="fk_HostVO_zone_uuid_ZoneVO"),
        sa.ForeignKeyConstraint(
            ["cluster_uuid"], ["ClusterVO.uuid"], name="fk_HostVO_cluster_uuid_ClusterVO"
        ),
        sa.PrimaryKeyConstraint("uuid"),
        sa.UniqueConstraint("management_ip", name="uq_HostVO_management_ip"),
    )
    for name, columns in _HOST_INDEXES:
        op.create_index(name, "HostVO", columns)

    op.create_table(
        "KVMHostVO",
        sa.Column("uuid", sa.String(32), nullable=False),
        sa.Column("username", sa.String(255), nullable=False),
        sa.Column("password", sa.String(255), nullable=False),
        sa.Column("ssh_port", sa.Integer(), nullable=False),
        sa.Column("agent_token", sa.String(255), nullable=False),
        sa.Column("os_distribution", sa.String(64), nullable=True),
        sa.Column("os_version", sa.String(64), nullable=True),
        sa.Column("os_release", sa.String(64), nullable=True),
        sa.Column("libvirt_version", sa.String(64), nullable=True),
        sa.Column("qemu_version", sa.String(64), nullable=True),
        sa.ForeignKeyConstraint(
            ["uuid"], ["HostVO.uuid"], name="fk_KVMHostVO_uuid_HostVO", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("uuid"),
    )


def downgrade() -> None:
    # Indexes go with their tables (MariaDB refuses to drop one a foreign key needs).
    op.drop_table("KVMHostVO")
    op.drop_table("HostVO")
