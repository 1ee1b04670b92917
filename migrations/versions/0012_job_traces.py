"""API jobs keep the flow traces of the chains they ran: ApiJobVO.trace (JSON text).

Revision ID: 0012_job_traces
Revises: 0011_vm_instances
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012_job_traces"
down_revision: str | None = "0011_vm_instances"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Nullable: rows of earlier jobs have no trace, and a job has none until it ends.
    op.add_column("ApiJobVO", sa.Column("trace", sa.Text(), nullable=True))


def downgrade() -> None:
    op.drop_column("ApiJobVO", "trace")
