"""Resources: zones, clusters, system and user tags.

Revision ID: 0003_resources
Revises: 0002_identity
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_resources"
down_revision: str | None = "0002_identity"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NOW = sa.text("CURRENT_TIMESTAMP")


def _dates() -> list[sa.Column[object]]:
    return [
        sa.Column("create_date", sa.DateTime(), server_default=NOW, nullable=False),
        sa.Column("last_op_date", sa.DateTime(), server_default=NOW, nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "ZoneVO",
        sa.Column("uuid", sa.String(32), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("type", sa.String(32), nullable=False),
        sa.Column("is_default", sa.Boolean(), nullable=False),
        *_dates(),
        sa.PrimaryKeyConstraint("uuid"),
    )
    op.create_index("ix_ZoneVO_name", "ZoneVO", ["name"])

    op.create_table(
        "ClusterVO",
        sa.Column("uuid", sa.String(32), nullable=False),
        sa.Column("zone_uuid", sa.String(32), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("hypervisor_type", sa.String(32), nullable=False),
        sa.Column("type", sa.String(32), nullable=False),
        sa.Column("architecture", sa.String(32), nullable=True),
        *_dates(),
        sa.ForeignKeyConstraint(
            ["zone_uuid"], ["ZoneVO.uuid"], name="fk_ClusterVO_zone_uuid_ZoneVO"
        ),
        sa.PrimaryKeyConstraint("uuid"),
    )
    op.create_index("ix_ClusterVO_zone_uuid", "ClusterVO", ["zone_uuid"])
    op.create_index("ix_ClusterVO_name", "ClusterVO", ["name"])
    op.create_index("ix_ClusterVO_hypervisor_type", "ClusterVO", ["hypervisor_type"])

    tag_tables: tuple[tuple[str, list[sa.Column[object]]], ...] = (
        ("SystemTagVO", [sa.Column("inherent", sa.Boolean(), nullable=False)]),
        ("UserTagVO", []),
    )
    for table, extra in tag_tables:
        op.create_table(
            table,
            sa.Column("uuid", sa.String(32), nullable=False),
            sa.Column("resource_uuid", sa.String(32), nullable=False),
            sa.Column("resource_type", sa.String(64), nullable=False),
            sa.Column("tag", sa.String(1024), nullable=False),
            sa.Column("type", sa.String(32), nullable=False),
            *extra,
            *_dates(),
            sa.PrimaryKeyConstraint("uuid"),
        )
        op.create_index(f"ix_{table}_resource_uuid", table, ["resource_uuid"])
        op.create_index(f"ix_{table}_resource_type", table, ["resource_type"])


def downgrade() -> None:
    for table in ("UserTagVO", "SystemTagVO", "ClusterVO", "ZoneVO"):
        op.drop_table(table)
