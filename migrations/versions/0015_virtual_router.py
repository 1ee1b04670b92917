"""Virtual routers: offerings (the appliance part of an instance offering) and appliance
VMs (the appliance part of a VM: networks, agent status and token, the guest L3 served).

Revision ID: 0015_virtual_router
Revises: 0014_network_services
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015_virtual_router"
down_revision: str | None = "0014_network_services"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _indexes(table: str, *columns: str) -> None:
    for column in columns:
        op.create_index(f"ix_{table}_{column}", table, [column])


def upgrade() -> None:
    table = "VirtualRouterOfferingVO"
    op.create_table(
        table,
        sa.Column("uuid", sa.String(32), nullable=False),
        sa.Column("zone_uuid", sa.String(32), nullable=False),
        sa.Column("management_network_uuid", sa.String(32), nullable=False),
        sa.Column("public_network_uuid", sa.String(32), nullable=False),
        sa.Column("image_uuid", sa.String(32), nullable=False),
        sa.Column("is_default", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["uuid"],
            ["InstanceOfferingVO.uuid"],
            name=f"fk_{table}_uuid_InstanceOfferingVO",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("uuid"),
    )
    _indexes(table, "zone_uuid", "management_network_uuid", "public_network_uuid", "image_uuid")

    table = "ApplianceVmVO"
    op.create_table(
        table,
        sa.Column("uuid", sa.String(32), nullable=False),
        sa.Column("appliance_vm_type", sa.String(64), nullable=False),
        sa.Column("management_network_uuid", sa.String(32), nullable=False),
        sa.Column("default_route_l3_network_uuid", sa.String(32), nullable=False),
        sa.Column("public_network_uuid", sa.String(32), nullable=False),
        sa.Column("guest_l3_network_uuid", sa.String(32), nullable=False),
        sa.Column("offering_uuid", sa.String(32), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("agent_port", sa.Integer(), nullable=False),
        sa.Column("token", sa.String(64), nullable=False),
        sa.ForeignKeyConstraint(
            ["uuid"],
            ["VmInstanceVO.uuid"],
            name=f"fk_{table}_uuid_VmInstanceVO",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("uuid"),
        sa.UniqueConstraint("guest_l3_network_uuid", name=f"uq_{table}_guest_l3_network_uuid"),
    )
    _indexes(table, "management_network_uuid", "public_network_uuid", "offering_uuid")


def downgrade() -> None:
    op.drop_table("ApplianceVmVO")
    op.drop_table("VirtualRouterOfferingVO")
