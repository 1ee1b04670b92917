"""Primary storage: local and NFS, cluster attachment, capacity.

Revision ID: 0007_primary_storage
Revises: 0006_hosts
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007_primary_storage"
down_revision: str | None = "0006_hosts"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NOW = sa.text("CURRENT_TIMESTAMP")


def _dates() -> list[sa.Column[object]]:
    return [
        sa.Column("create_date", sa.DateTime(), server_default=NOW, nullable=False),
        sa.Column("last_op_date", sa.DateTime(), server_default=NOW, nullable=False),
    ]


def _capacities(*names: str) -> list[sa.Column[object]]:
    return [sa.Column(name, sa.BigInteger(), nullable=False) for name in names]


_CAPACITIES = (
    "total_capacity",
    "available_capacity",
    "total_physical_capacity",
    "available_physical_capacity",
)


def upgrade() -> None:
    op.create_table(
        "PrimaryStorageVO",
        sa.Column("uuid", sa.String(32), nullable=False),
        sa.Column("zone_uuid", sa.String(32), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("url", sa.String(2048), nullable=False),
        sa.Column("type", sa.String(32), nullable=False),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("mount_path", sa.String(2048), nullable=True),
        *_capacities(*_CAPACITIES, "system_used_capacity"),
        *_dates(),
        sa.ForeignKeyConstraint(
            ["zone_uuid"], ["ZoneVO.uuid"], name="fk_PrimaryStorageVO_zone_uuid_ZoneVO"
        ),
        sa.PrimaryKeyConstraint("uuid"),
    )
    for column in ("zone_uuid", "name", "type", "state", "status"):
        op.create_index(f"ix_PrimaryStorageVO_{column}", "PrimaryStorageVO", [column])
    op.create_index(
        "ix_PrimaryStorageVO_create_date_uuid", "PrimaryStorageVO", ["create_date", "uuid"]
    )

    op.create_table(
        "PrimaryStorageClusterRefVO",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("primary_storage_uuid", sa.String(32), nullable=False),
        sa.Column("cluster_uuid", sa.String(32), nullable=False),
        *_dates(),
        sa.ForeignKeyConstraint(
            ["primary_storage_uuid"],
            ["PrimaryStorageVO.uuid"],
            name="fk_PrimaryStorageClusterRefVO_ps_uuid",
        ),
        sa.ForeignKeyConstraint(
            ["cluster_uuid"],
            ["ClusterVO.uuid"],
            name="fk_PrimaryStorageClusterRefVO_cluster_uuid_ClusterVO",
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_PrimaryStorageClusterRefVO_primary_storage_uuid",
        "PrimaryStorageClusterRefVO",
        ["primary_storage_uuid"],
    )
    op.create_index(
        "ix_PrimaryStorageClusterRefVO_cluster_uuid",
        "PrimaryStorageClusterRefVO",
        ["cluster_uuid"],
    )
    op.create_index(
        "uq_PrimaryStorageClusterRefVO_primary_storage_uuid_cluster_uuid",
        "PrimaryStorageClusterRefVO",
        ["primary_storage_uuid", "cluster_uuid"],
        unique=True,
    )

    op.create_table(
        "LocalStorageHostRefVO",
        sa.Column("primary_storage_uuid", sa.String(32), nullable=False),
        sa.Column("host_uuid", sa.String(32), nullable=False),
        *_capacities(*_CAPACITIES),
        *_dates(),
        sa.ForeignKeyConstraint(
            ["primary_storage_uuid"],
            ["PrimaryStorageVO.uuid"],
            name="fk_LocalStorageHostRefVO_primary_storage_uuid_PrimaryStorageVO",
        ),
        sa.ForeignKeyConstraint(
            ["host_uuid"], ["HostVO.uuid"], name="fk_LocalStorageHostRefVO_host_uuid_HostVO"
        ),
        sa.PrimaryKeyConstraint("primary_storage_uuid", "host_uuid"),
    )
    op.create_index("ix_LocalStorageHostRefVO_host_uuid", "LocalStorageHostRefVO", ["host_uuid"])


def downgrade() -> None:
    for table in ("LocalStorageHostRefVO", "PrimaryStorageClusterRefVO", "PrimaryStorageVO"):
        op.drop_table(table)
