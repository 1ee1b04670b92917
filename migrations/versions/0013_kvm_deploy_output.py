"""KVM hosts keep what their last agent deployment printed: KVMHostVO.deploy_output.

Revision ID: 0013_kvm_deploy_output
Revises: 0012_job_traces
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013_kvm_deploy_output"
down_revision: str | None = "0012_job_traces"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Nullable: hosts added before have no recorded deployment.
    op.add_column("KVMHostVO", sa.Column("deploy_output", sa.Text(), nullable=True))


def downgrade() -> None:
    op.drop_column("KVMHostVO", "deploy_output")
