"""L2 and L3 networks, cluster attachment, IP ranges, DNS, used IPs.

Revision ID: 0009_networks
Revises: 0008_storage_images
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0009_networks"
down_revision: str | None = "0008_storage_images"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NOW = sa.text("CURRENT_TIMESTAMP")


def _dates() -> list[sa.Column[datetime]]:
    return [
        sa.Column("create_date", sa.DateTime(), server_default=NOW, nullable=False),
        sa.Column("last_op_date", sa.DateTime(), server_default=NOW, nullable=False),
    ]


def _fk(table: str, column: str, target: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column], [f"{target}.uuid"], name=f"fk_{table}_{column}_{target}"
    )


def _indexes(table: str, *columns: str | tuple[str, ...]) -> None:
    for spec in columns:
        cols = list(spec) if isinstance(spec, tuple) else [spec]
        op.create_index(f"ix_{table}_{'_'.join(cols)}", table, cols)


def upgrade() -> None:
    op.create_table(
        "L2NetworkVO",
        sa.Column("uuid", sa.String(32), nullable=False),
        sa.Column("zone_uuid", sa.String(32), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("physical_interface", sa.String(255), nullable=False),
        sa.Column("type", sa.String(32), nullable=False),
        sa.Column("v_switch_type", sa.String(32), nullable=False),
        sa.Column("virtual_network_id", sa.Integer(), nullable=False),
        sa.Column("isolated", sa.Boolean(), nullable=False),
        *_dates(),
        _fk("L2NetworkVO", "zone_uuid", "ZoneVO"),
        sa.PrimaryKeyConstraint("uuid"),
        sa.UniqueConstraint(
            "zone_uuid",
            "physical_interface",
            "virtual_network_id",
            name="uq_L2NetworkVO_zone_uuid_physical_interface_virtual_network_id",
        ),
    )
    _indexes("L2NetworkVO", "zone_uuid", "name", "type", ("create_date", "uuid"))

    op.create_table(
        "L2NetworkClusterRefVO",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("l2_network_uuid", sa.String(32), nullable=False),
        sa.Column("cluster_uuid", sa.String(32), nullable=False),
        sa.Column("l2_provider_type", sa.String(64), nullable=False),
        *_dates(),
        _fk("L2NetworkClusterRefVO", "l2_network_uuid", "L2NetworkVO"),
        _fk("L2NetworkClusterRefVO", "cluster_uuid", "ClusterVO"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint(
            "l2_network_uuid",
            "cluster_uuid",
            name="uq_L2NetworkClusterRefVO_l2_network_uuid_cluster_uuid",
        ),
    )
    _indexes("L2NetworkClusterRefVO", "cluster_uuid")

    op.create_table(
        "L3NetworkVO",
        sa.Column("uuid", sa.String(32), nullable=False),
        sa.Column("zone_uuid", sa.String(32), nullable=False),
        sa.Column("l2_network_uuid", sa.String(32), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("type", sa.String(32), nullable=False),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("system", sa.Boolean(), nullable=False),
        sa.Column("category", sa.String(32), nullable=False),
        sa.Column("ip_version", sa.Integer(), nullable=False),
        sa.Column("dns_domain", sa.String(255), nullable=True),
        sa.Column("enable_ipam", sa.Boolean(), nullable=False),
        sa.Column("isolated", sa.Boolean(), nullable=False),
        *_dates(),
        _fk("L3NetworkVO", "zone_uuid", "ZoneVO"),
        _fk("L3NetworkVO", "l2_network_uuid", "L2NetworkVO"),
        sa.PrimaryKeyConstraint("uuid"),
    )
    _indexes(
        "L3NetworkVO", "zone_uuid", "l2_network_uuid", "name", "category", ("create_date", "uuid")
    )

    op.create_table(
        "IpRangeVO",
        sa.Column("uuid", sa.String(32), nullable=False),
        sa.Column("l3_network_uuid", sa.String(32), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("start_ip", sa.String(64), nullable=False),
        sa.Column("end_ip", sa.String(64), nullable=False),
        sa.Column("netmask", sa.String(64), nullable=False),
        sa.Column("gateway", sa.String(64), nullable=False),
        sa.Column("network_cidr", sa.String(64), nullable=False),
        sa.Column("prefix_len", sa.Integer(), nullable=False),
        sa.Column("ip_version", sa.Integer(), nullable=False),
        sa.Column("address_mode", sa.String(32), nullable=True),
        sa.Column("ip_range_type", sa.String(32), nullable=False),
        *_dates(),
        _fk("IpRangeVO", "l3_network_uuid", "L3NetworkVO"),
        sa.PrimaryKeyConstraint("uuid"),
    )
    _indexes(
        "IpRangeVO", "l3_network_uuid", "name", "start_ip", "network_cidr", ("create_date", "uuid")
    )

    op.create_table(
        "L3NetworkDnsVO",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("l3_network_uuid", sa.String(32), nullable=False),
        sa.Column("dns", sa.String(255), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        *_dates(),
        _fk("L3NetworkDnsVO", "l3_network_uuid", "L3NetworkVO"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("l3_network_uuid", "dns", name="uq_L3NetworkDnsVO_l3_network_uuid_dns"),
    )
    _indexes("L3NetworkDnsVO", "dns")

    op.create_table(
        "UsedIpVO",
        sa.Column("uuid", sa.String(32), nullable=False),
        sa.Column("ip_range_uuid", sa.String(32), nullable=False),
        sa.Column("l3_network_uuid", sa.String(32), nullable=False),
        sa.Column("ip", sa.String(64), nullable=False),
        sa.Column("ip_in_long", sa.BigInteger(), nullable=False),
        sa.Column("gateway", sa.String(64), nullable=False),
        sa.Column("netmask", sa.String(64), nullable=False),
        sa.Column("ip_version", sa.Integer(), nullable=False),
        sa.Column("used_for", sa.String(64), nullable=True),
        sa.Column("vm_nic_uuid", sa.String(32), nullable=True),
        *_dates(),
        _fk("UsedIpVO", "ip_range_uuid", "IpRangeVO"),
        _fk("UsedIpVO", "l3_network_uuid", "L3NetworkVO"),
        sa.PrimaryKeyConstraint("uuid"),
        # The database's guard against handing one address out twice (and the scan's index).
        sa.UniqueConstraint(
            "l3_network_uuid", "ip_in_long", name="uq_UsedIpVO_l3_network_uuid_ip_in_long"
        ),
    )
    _indexes("UsedIpVO", "ip_range_uuid", "ip", "vm_nic_uuid", ("create_date", "uuid"))


def downgrade() -> None:
    for table in (
        "UsedIpVO",
        "L3NetworkDnsVO",
        "IpRangeVO",
        "L3NetworkVO",
        "L2NetworkClusterRefVO",
        "L2NetworkVO",
    ):
        op.drop_table(table)
