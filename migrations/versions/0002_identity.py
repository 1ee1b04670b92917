"""Identity: accounts and sessions.

Revision ID: 0002_identity
Revises: 0001_kernel
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002_identity"
down_revision: str | None = "0001_kernel"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NOW = sa.text("CURRENT_TIMESTAMP")


def upgrade() -> None:
    op.create_table(
        "AccountVO",
        sa.Column("uuid", sa.String(32), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("type", sa.String(32), nullable=False),
        sa.Column("password_hash", sa.String(255), nullable=False),
        sa.Column("description", sa.String(2048), nullable=True),
        sa.Column("create_date", sa.DateTime(), server_default=NOW, nullable=False),
        sa.Column("last_op_date", sa.DateTime(), server_default=NOW, nullable=False),
        sa.PrimaryKeyConstraint("uuid"),
        sa.UniqueConstraint("name", name="uq_AccountVO_name"),
    )
    op.create_index("ix_AccountVO_type", "AccountVO", ["type"])

    op.create_table(
        "SessionVO",
        sa.Column("uuid", sa.String(32), nullable=False),
        sa.Column("account_uuid", sa.String(32), nullable=False),
        sa.Column("user_uuid", sa.String(32), nullable=True),
        sa.Column("expired_date", sa.DateTime(), nullable=False),
        sa.Column("create_date", sa.DateTime(), server_default=NOW, nullable=False),
        sa.PrimaryKeyConstraint("uuid"),
        sa.ForeignKeyConstraint(
            ["account_uuid"],
            ["AccountVO.uuid"],
            name="fk_SessionVO_account_uuid_AccountVO",
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_SessionVO_account_uuid", "SessionVO", ["account_uuid"])
    op.create_index("ix_SessionVO_expired_date", "SessionVO", ["expired_date"])


def downgrade() -> None:
    # Its indexes go with the table: MariaDB refuses to drop ix_SessionVO_account_uuid on
    # its own while the foreign key needs it.
    op.drop_table("SessionVO")
    op.drop_index("ix_AccountVO_type", table_name="AccountVO")
    op.drop_table("AccountVO")
