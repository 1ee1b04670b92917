"""The kernel's tables: ResourceVO, ManagementNodeVO, GlobalConfigVO.

Revision ID: 0001_kernel
Revises:
Create Date: 2025-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001_kernel"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NOW = sa.text("CURRENT_TIMESTAMP")


def upgrade() -> None:
    op.create_table(
        "ResourceVO",
        sa.Column("uuid", sa.String(32), nullable=False),
        sa.Column("resource_type", sa.String(255), nullable=False),
        sa.Column("resource_name", sa.String(255), nullable=True),
        sa.Column("account_uuid", sa.String(32), nullable=True),
        sa.Column("create_date", sa.DateTime(), server_default=NOW, nullable=False),
        sa.Column("last_op_date", sa.DateTime(), server_default=NOW, nullable=False),
        sa.PrimaryKeyConstraint("uuid"),
    )
    op.create_index("ix_ResourceVO_resource_type", "ResourceVO", ["resource_type"])
    op.create_index("ix_ResourceVO_resource_name", "ResourceVO", ["resource_name"])
    op.create_index("ix_ResourceVO_account_uuid", "ResourceVO", ["account_uuid"])

    op.create_table(
        "ManagementNodeVO",
        sa.Column("uuid", sa.String(32), nullable=False),
        sa.Column("host_name", sa.String(255), nullable=False),
        sa.Column("port", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("heartbeat", sa.Double(), nullable=False),
        sa.Column("joined_at", sa.Double(), nullable=False),
        sa.Column("create_date", sa.DateTime(), server_default=NOW, nullable=False),
        sa.PrimaryKeyConstraint("uuid"),
    )
    op.create_index("ix_ManagementNodeVO_heartbeat", "ManagementNodeVO", ["heartbeat"])

    op.create_table(
        "GlobalConfigVO",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("category", sa.String(64), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("default_value", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("value_type", sa.String(16), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("category", "name", name="uq_GlobalConfigVO_category_name"),
    )


def downgrade() -> None:
    op.drop_table("GlobalConfigVO")
    op.drop_index("ix_ManagementNodeVO_heartbeat", table_name="ManagementNodeVO")
    op.drop_table("ManagementNodeVO")
    op.drop_index("ix_ResourceVO_account_uuid", table_name="ResourceVO")
    op.drop_index("ix_ResourceVO_resource_name", table_name="ResourceVO")
    op.drop_index("ix_ResourceVO_resource_type", table_name="ResourceVO")
    op.drop_table("ResourceVO")
