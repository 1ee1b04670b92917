"""API jobs: ApiJobVO, the record of async API calls that any node can answer polls from.

Revision ID: 0004_api_jobs
Revises: 0003_resources
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_api_jobs"
down_revision: str | None = "0003_resources"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NOW = sa.text("CURRENT_TIMESTAMP")


def upgrade() -> None:
    op.create_table(
        "ApiJobVO",
        sa.Column("uuid", sa.String(32), nullable=False),
        sa.Column("api_name", sa.String(255), nullable=False),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("node_uuid", sa.String(32), nullable=False),
        sa.Column("account_uuid", sa.String(32), nullable=True),
        sa.Column("resource_uuid", sa.String(32), nullable=True),
        sa.Column("timeout_ms", sa.Integer(), nullable=False),
        sa.Column("result", sa.Text(), nullable=True),
        sa.Column("create_date", sa.DateTime(), server_default=NOW, nullable=False),
        sa.Column("finished_date", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("uuid"),
    )
    op.create_index("ix_ApiJobVO_state", "ApiJobVO", ["state"])
    op.create_index("ix_ApiJobVO_node_uuid", "ApiJobVO", ["node_uuid"])
    op.create_index("ix_ApiJobVO_account_uuid", "ApiJobVO", ["account_uuid"])


def downgrade() -> None:
    op.drop_index("ix_ApiJobVO_account_uuid", table_name="ApiJobVO")
    op.drop_index("ix_ApiJobVO_node_uuid", table_name="ApiJobVO")
    op.drop_index("ix_ApiJobVO_state", table_name="ApiJobVO")
    op.drop_table("ApiJobVO")
