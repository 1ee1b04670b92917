"""Virtual routers: offerings (the appliance part of an instance offering) and appliance
VMs (the appliance part of a VM: networks, agent status and token, the guest L3 served);
load balancers on VIPs, their listeners and backend NICs.

Revision ID: 0015_virtual_router
Revises: 0014_network_services
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

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

    _load_balancers()


def _dates() -> list[sa.Column[datetime]]:
    now = sa.text("CURRENT_TIMESTAMP")
    return [
        sa.Column("create_date", sa.DateTime(), server_default=now, nullable=False),
        sa.Column("last_op_date", sa.DateTime(), server_default=now, nullable=False),
    ]


def _load_balancers() -> None:
    table = "LoadBalancerVO"
    op.create_table(
        table,
        sa.Column("uuid", sa.String(32), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("vip_uuid", sa.String(32), nullable=False),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("type", sa.String(32), nullable=False),
        *_dates(),
        sa.ForeignKeyConstraint(["vip_uuid"], ["VipVO.uuid"], name=f"fk_{table}_vip_uuid_VipVO"),
        sa.PrimaryKeyConstraint("uuid"),
    )
    _indexes(table, "name", "vip_uuid")
    op.create_index(f"ix_{table}_create_date_uuid", table, ["create_date", "uuid"])

    table = "LoadBalancerListenerVO"
    op.create_table(
        table,
        sa.Column("uuid", sa.String(32), nullable=False),
        sa.Column("load_balancer_uuid", sa.String(32), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("protocol", sa.String(32), nullable=False),
        sa.Column("load_balancer_port", sa.Integer(), nullable=False),
        sa.Column("instance_port", sa.Integer(), nullable=False),
        *_dates(),
        sa.ForeignKeyConstraint(
            ["load_balancer_uuid"],
            ["LoadBalancerVO.uuid"],
            name=f"fk_{table}_load_balancer_uuid_LoadBalancerVO",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("uuid"),
        sa.UniqueConstraint(
            "load_balancer_uuid",
            "protocol",
            "load_balancer_port",
            name="uq_LbListener_lb_port",
        ),
    )
    _indexes(table, "load_balancer_uuid")
    op.create_index(f"ix_{table}_create_date_uuid", table, ["create_date", "uuid"])

    table = "LoadBalancerListenerVmNicRefVO"
    op.create_table(
        table,
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("listener_uuid", sa.String(32), nullable=False),
        sa.Column("vm_nic_uuid", sa.String(32), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        *_dates(),
        sa.ForeignKeyConstraint(
            ["listener_uuid"],
            ["LoadBalancerListenerVO.uuid"],
            name="fk_LbListenerNicRef_listener",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["vm_nic_uuid"], ["VmNicVO.uuid"], name="fk_LbListenerNicRef_vm_nic", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint(
            "listener_uuid", "vm_nic_uuid", name=f"uq_{table}_listener_uuid_vm_nic_uuid"
        ),
    )
    _indexes(table, "vm_nic_uuid")


def downgrade() -> None:
    op.drop_table("LoadBalancerListenerVmNicRefVO")
    op.drop_table("LoadBalancerListenerVO")
    op.drop_table("LoadBalancerVO")
    op.drop_table("ApplianceVmVO")
    op.drop_table("VirtualRouterOfferingVO")
