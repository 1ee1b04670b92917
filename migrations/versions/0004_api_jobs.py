"""API jobs.

Revision ID: 0004_api_jobs
Revises: 0003_resources
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

revision: str = "0004_api_jobs"
down_revision: str | None = "0003_resources"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
