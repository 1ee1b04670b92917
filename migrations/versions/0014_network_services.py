"""Network services: providers and their types, which provider serves which type on an
L3 network, security groups (rules, L3 attachments, member NICs), VIPs (and the resources
using them), EIPs and port-forwarding rules.

Revision ID: 0014_network_services
Revises: 0013_kvm_deploy_output
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0014_network_services"
down_revision: str | None = "0013_kvm_deploy_output"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NOW = sa.text("CURRENT_TIMESTAMP")


def _dates() -> list[sa.Column[datetime]]:
    return [
        sa.Column("create_date", sa.DateTime(), server_default=NOW, nullable=False),
        sa.Column("last_op_date", sa.DateTime(), server_default=NOW, nullable=False),
    ]


def _fk(
    table: str, column: str, target: str, ondelete: str | None = None
) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column], [f"{target}.uuid"], name=f"fk_{table}_{column}_{target}", ondelete=ondelete
    )


def _named_fk(table: str, column: str, target: str, short: str) -> sa.ForeignKeyConstraint:
    """A foreign key whose conventional name would pass MariaDB's 64-character limit."""
    return sa.ForeignKeyConstraint([column], [f"{target}.uuid"], name=f"fk_{table}_{short}")


def _indexes(table: str, *columns: str | tuple[str, ...]) -> None:
    for spec in columns:
        cols = list(spec) if isinstance(spec, tuple) else [spec]
        op.create_index(f"ix_{table}_{'_'.join(cols)}", table, cols)


def _uuid() -> sa.Column[str]:
    return sa.Column("uuid", sa.String(32), nullable=False)


def upgrade() -> None:
    table = "NetworkServiceProviderVO"
    op.create_table(
        table,
        _uuid(),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("type", sa.String(64), nullable=False),
        *_dates(),
        sa.PrimaryKeyConstraint("uuid"),
        sa.UniqueConstraint("type", name=f"uq_{table}_type"),
    )

    table = "NetworkServiceTypeVO"
    op.create_table(
        table,
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("network_service_provider_uuid", sa.String(32), nullable=False),
        sa.Column("type", sa.String(64), nullable=False),
        _named_fk(
            table, "network_service_provider_uuid", "NetworkServiceProviderVO", "provider_uuid"
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint(
            "network_service_provider_uuid",
            "type",
            name=f"uq_{table}_network_service_provider_uuid_type",
        ),
    )
    _indexes(table, "type")

    table = "NetworkServiceL3NetworkRefVO"
    op.create_table(
        table,
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("l3_network_uuid", sa.String(32), nullable=False),
        sa.Column("network_service_provider_uuid", sa.String(32), nullable=False),
        sa.Column("network_service_type", sa.String(64), nullable=False),
        *_dates(),
        _fk(table, "l3_network_uuid", "L3NetworkVO"),
        _named_fk(
            table, "network_service_provider_uuid", "NetworkServiceProviderVO", "provider_uuid"
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint(
            "l3_network_uuid", "network_service_type", name=f"uq_{table}_l3_uuid_type"
        ),
    )
    _indexes(table, "network_service_provider_uuid", "network_service_type")

    table = "SecurityGroupVO"
    op.create_table(
        table,
        _uuid(),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("ip_version", sa.Integer(), nullable=False),
        *_dates(),
        sa.PrimaryKeyConstraint("uuid"),
    )
    _indexes(table, "name", ("create_date", "uuid"))

    table = "SecurityGroupRuleVO"
    op.create_table(
        table,
        _uuid(),
        sa.Column("security_group_uuid", sa.String(32), nullable=False),
        sa.Column("type", sa.String(32), nullable=False),
        sa.Column("ip_version", sa.Integer(), nullable=False),
        sa.Column("protocol", sa.String(32), nullable=False),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("allowed_cidr", sa.String(64), nullable=True),
        sa.Column("remote_security_group_uuid", sa.String(32), nullable=True),
        sa.Column("start_port", sa.Integer(), nullable=False),
        sa.Column("end_port", sa.Integer(), nullable=False),
        *_dates(),
        _fk(table, "security_group_uuid", "SecurityGroupVO"),
        _named_fk(table, "remote_security_group_uuid", "SecurityGroupVO", "remote_sg_uuid"),
        sa.PrimaryKeyConstraint("uuid"),
    )
    _indexes(table, "security_group_uuid", "remote_security_group_uuid")

    table = "SecurityGroupL3NetworkRefVO"
    op.create_table(
        table,
        _uuid(),
        sa.Column("security_group_uuid", sa.String(32), nullable=False),
        sa.Column("l3_network_uuid", sa.String(32), nullable=False),
        *_dates(),
        _named_fk(table, "security_group_uuid", "SecurityGroupVO", "sg_uuid"),
        _fk(table, "l3_network_uuid", "L3NetworkVO"),
        sa.PrimaryKeyConstraint("uuid"),
        sa.UniqueConstraint(
            "security_group_uuid", "l3_network_uuid", name=f"uq_{table}_sg_uuid_l3_uuid"
        ),
    )
    _indexes(table, "l3_network_uuid")

    table = "VmNicSecurityGroupRefVO"
    op.create_table(
        table,
        _uuid(),
        sa.Column("vm_nic_uuid", sa.String(32), nullable=False),
        sa.Column("security_group_uuid", sa.String(32), nullable=False),
        sa.Column("vm_instance_uuid", sa.String(32), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        *_dates(),
        _fk(table, "vm_nic_uuid", "VmNicVO", ondelete="CASCADE"),
        _fk(table, "security_group_uuid", "SecurityGroupVO"),
        sa.PrimaryKeyConstraint("uuid"),
        sa.UniqueConstraint(
            "vm_nic_uuid",
            "security_group_uuid",
            name=f"uq_{table}_vm_nic_uuid_security_group_uuid",
        ),
    )
    _indexes(table, "security_group_uuid", "vm_instance_uuid")

    table = "VipVO"
    op.create_table(
        table,
        _uuid(),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("l3_network_uuid", sa.String(32), nullable=False),
        sa.Column("ip", sa.String(64), nullable=False),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("gateway", sa.String(64), nullable=False),
        sa.Column("netmask", sa.String(64), nullable=False),
        sa.Column("prefix_len", sa.Integer(), nullable=True),
        sa.Column("service_provider", sa.String(64), nullable=True),
        sa.Column("use_for", sa.String(64), nullable=True),
        sa.Column("system", sa.Boolean(), nullable=False),
        sa.Column("used_ip_uuid", sa.String(32), nullable=True),
        *_dates(),
        _fk(table, "l3_network_uuid", "L3NetworkVO"),
        sa.PrimaryKeyConstraint("uuid"),
    )
    _indexes(table, "name", "l3_network_uuid", "ip", "used_ip_uuid", ("create_date", "uuid"))

    table = "VipNetworkServicesRefVO"
    op.create_table(
        table,
        _uuid(),
        sa.Column("vip_uuid", sa.String(32), nullable=False),
        sa.Column("service_type", sa.String(64), nullable=False),
        sa.Column("protocol", sa.String(16), nullable=True),
        sa.Column("port_start", sa.Integer(), nullable=True),
        sa.Column("port_end", sa.Integer(), nullable=True),
        *_dates(),
        _fk(table, "vip_uuid", "VipVO"),
        sa.PrimaryKeyConstraint("uuid"),
    )
    _indexes(table, "vip_uuid")

    table = "EipVO"
    op.create_table(
        table,
        _uuid(),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("vip_uuid", sa.String(32), nullable=False),
        sa.Column("vm_nic_uuid", sa.String(32), nullable=True),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("vip_ip", sa.String(64), nullable=False),
        sa.Column("guest_ip", sa.String(64), nullable=True),
        *_dates(),
        _fk(table, "vip_uuid", "VipVO"),
        _fk(table, "vm_nic_uuid", "VmNicVO", ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("uuid"),
        sa.UniqueConstraint("vip_uuid", name=f"uq_{table}_vip_uuid"),
    )
    _indexes(table, "name", "vm_nic_uuid", "vip_ip", ("create_date", "uuid"))

    table = "PortForwardingRuleVO"
    op.create_table(
        table,
        _uuid(),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("vip_uuid", sa.String(32), nullable=False),
        sa.Column("vip_ip", sa.String(64), nullable=False),
        sa.Column("vip_port_start", sa.Integer(), nullable=False),
        sa.Column("vip_port_end", sa.Integer(), nullable=False),
        sa.Column("private_port_start", sa.Integer(), nullable=False),
        sa.Column("private_port_end", sa.Integer(), nullable=False),
        sa.Column("protocol_type", sa.String(16), nullable=False),
        sa.Column("vm_nic_uuid", sa.String(32), nullable=True),
        sa.Column("guest_ip", sa.String(64), nullable=True),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("allowed_cidr", sa.String(64), nullable=True),
        *_dates(),
        _fk(table, "vip_uuid", "VipVO"),
        _fk(table, "vm_nic_uuid", "VmNicVO", ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("uuid"),
    )
    _indexes(table, "name", "vip_uuid", "vm_nic_uuid", ("create_date", "uuid"))


def downgrade() -> None:
    for table in (
        "PortForwardingRuleVO",
        "EipVO",
        "VipNetworkServicesRefVO",
        "VipVO",
        "VmNicSecurityGroupRefVO",
        "SecurityGroupL3NetworkRefVO",
        "SecurityGroupRuleVO",
        "SecurityGroupVO",
        "NetworkServiceL3NetworkRefVO",
        "NetworkServiceTypeVO",
        "NetworkServiceProviderVO",
    ):
        op.drop_table(table)
