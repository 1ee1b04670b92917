"""Tables of the network domain: L2 networks and their cluster attachments, L3 networks
with their IP ranges, DNS servers and allocated (used) IPs.

L2 subtypes share one table (single-table inheritance on ``type``, as ZStack's
L2VlanNetworkVO extends L2NetworkVO): ``virtual_network_id`` is the vlan id of a Vlan
network and 0 for a NoVlan one, and selecting ``L2VlanNetworkVO`` selects only Vlan rows.
Relationships are ``lazy="raise"``: nested rows are loaded with explicit options, never
lazily on the event loop.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from zstackpy.core.db.models import NOW, Base

L2_NO_VLAN = "L2NoVlanNetwork"
L2_VLAN = "L2VlanNetwork"


class L2NetworkClusterRefVO(Base):
    """An L2 network attached to a cluster: every host of the cluster has its bridge."""

    __tablename__ = "L2NetworkClusterRefVO"
    __table_args__ = (UniqueConstraint("l2_network_uuid", "cluster_uuid"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    l2_network_uuid: Mapped[str] = mapped_column(String(32), ForeignKey("L2NetworkVO.uuid"))
    cluster_uuid: Mapped[str] = mapped_column(String(32), ForeignKey("ClusterVO.uuid"), index=True)
    l2_provider_type: Mapped[str] = mapped_column(String(64), default="LinuxBridge")
    create_date: Mapped[datetime] = mapped_column(DateTime, server_default=NOW)
    last_op_date: Mapped[datetime] = mapped_column(DateTime, server_default=NOW, onupdate=NOW)


class L2NetworkVO(Base):
    __tablename__ = "L2NetworkVO"
    __table_args__ = (
        # The database's own guard against two networks on one wire: a NoVlan network has
        # virtual_network_id 0, a Vlan network its vlan id (1-4094).
        UniqueConstraint("zone_uuid", "physical_interface", "virtual_network_id"),
        # The query API's default order: paged queries walk this index instead of sorting.
        Index("ix_L2NetworkVO_create_date_uuid", "create_date", "uuid"),
    )

    uuid: Mapped[str] = mapped_column(String(32), primary_key=True)
    zone_uuid: Mapped[str] = mapped_column(String(32), ForeignKey("ZoneVO.uuid"), index=True)
    name: Mapped[str] = mapped_column(String(255), index=True)
    description: Mapped[str | None] = mapped_column(Text)
    # 255: the unique key must fit MariaDB's 3072-byte index limit in utf8mb4.
    physical_interface: Mapped[str] = mapped_column(String(255))
    type: Mapped[str] = mapped_column(String(32), index=True)
    v_switch_type: Mapped[str] = mapped_column(String(32), default="LinuxBridge")
    virtual_network_id: Mapped[int] = mapped_column(Integer, default=0)
    isolated: Mapped[bool] = mapped_column(Boolean, default=False)
    create_date: Mapped[datetime] = mapped_column(DateTime, server_default=NOW)
    last_op_date: Mapped[datetime] = mapped_column(DateTime, server_default=NOW, onupdate=NOW)

    cluster_refs: Mapped[list[L2NetworkClusterRefVO]] = relationship(
        lazy="raise", order_by=L2NetworkClusterRefVO.id
    )

    __mapper_args__ = {  # noqa: RUF012 - SQLAlchemy's API
        "polymorphic_on": "type",
        "polymorphic_identity": L2_NO_VLAN,
    }


class L2VlanNetworkVO(L2NetworkVO):
    """A Vlan network: same row shape, ``virtual_network_id`` is the vlan id."""

    __mapper_args__ = {"polymorphic_identity": L2_VLAN}  # noqa: RUF012 - SQLAlchemy's API


class IpRangeVO(Base):
    """A range of addresses an L3 network hands out; the gateway is never inside it."""

    __tablename__ = "IpRangeVO"
    __table_args__ = (Index("ix_IpRangeVO_create_date_uuid", "create_date", "uuid"),)

    uuid: Mapped[str] = mapped_column(String(32), primary_key=True)
    l3_network_uuid: Mapped[str] = mapped_column(
        String(32), ForeignKey("L3NetworkVO.uuid"), index=True
    )
    name: Mapped[str] = mapped_column(String(255), index=True)
    description: Mapped[str | None] = mapped_column(Text)
    start_ip: Mapped[str] = mapped_column(String(64), index=True)
    end_ip: Mapped[str] = mapped_column(String(64))
    netmask: Mapped[str] = mapped_column(String(64))
    gateway: Mapped[str] = mapped_column(String(64))
    network_cidr: Mapped[str] = mapped_column(String(64), index=True)
    prefix_len: Mapped[int] = mapped_column(Integer)
    ip_version: Mapped[int] = mapped_column(Integer, default=4)
    address_mode: Mapped[str | None] = mapped_column(String(32))
    ip_range_type: Mapped[str] = mapped_column(String(32), default="Normal")
    create_date: Mapped[datetime] = mapped_column(DateTime, server_default=NOW)
    last_op_date: Mapped[datetime] = mapped_column(DateTime, server_default=NOW, onupdate=NOW)


class L3NetworkDnsVO(Base):
    __tablename__ = "L3NetworkDnsVO"
    __table_args__ = (UniqueConstraint("l3_network_uuid", "dns"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    l3_network_uuid: Mapped[str] = mapped_column(String(32), ForeignKey("L3NetworkVO.uuid"))
    dns: Mapped[str] = mapped_column(String(255), index=True)
    # The order guests see the servers in (resolv.conf order): the order they were added.
    position: Mapped[int] = mapped_column(Integer)
    create_date: Mapped[datetime] = mapped_column(DateTime, server_default=NOW)
    last_op_date: Mapped[datetime] = mapped_column(DateTime, server_default=NOW, onupdate=NOW)


class NetworkServiceL3NetworkRefVO(Base):
    """A network service type of an L3 network and the provider that serves it (one
    provider per type and network). Written by the network-service plugin; part of the
    L3's inventory (``networkServices``)."""

    __tablename__ = "NetworkServiceL3NetworkRefVO"
    # Named: the conventional names pass MariaDB's 64-character limit.
    __table_args__ = (
        UniqueConstraint(
            "l3_network_uuid",
            "network_service_type",
            name="uq_NetworkServiceL3NetworkRefVO_l3_uuid_type",
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    l3_network_uuid: Mapped[str] = mapped_column(String(32), ForeignKey("L3NetworkVO.uuid"))
    network_service_provider_uuid: Mapped[str] = mapped_column(
        String(32),
        ForeignKey(
            "NetworkServiceProviderVO.uuid", name="fk_NetworkServiceL3NetworkRefVO_provider_uuid"
        ),
        index=True,
    )
    network_service_type: Mapped[str] = mapped_column(String(64), index=True)
    create_date: Mapped[datetime] = mapped_column(DateTime, server_default=NOW)
    last_op_date: Mapped[datetime] = mapped_column(DateTime, server_default=NOW, onupdate=NOW)


class L3NetworkVO(Base):
    __tablename__ = "L3NetworkVO"
    __table_args__ = (Index("ix_L3NetworkVO_create_date_uuid", "create_date", "uuid"),)

    uuid: Mapped[str] = mapped_column(String(32), primary_key=True)
    zone_uuid: Mapped[str] = mapped_column(String(32), ForeignKey("ZoneVO.uuid"), index=True)
    l2_network_uuid: Mapped[str] = mapped_column(
        String(32), ForeignKey("L2NetworkVO.uuid"), index=True
    )
    name: Mapped[str] = mapped_column(String(255), index=True)
    description: Mapped[str | None] = mapped_column(Text)
    type: Mapped[str] = mapped_column(String(32), default="L3BasicNetwork")
    state: Mapped[str] = mapped_column(String(32), default="Enabled")
    system: Mapped[bool] = mapped_column(Boolean, default=False)
    category: Mapped[str] = mapped_column(String(32), default="Private", index=True)
    ip_version: Mapped[int] = mapped_column(Integer, default=4)
    dns_domain: Mapped[str | None] = mapped_column(String(255))
    enable_ipam: Mapped[bool] = mapped_column(Boolean, default=True)
    isolated: Mapped[bool] = mapped_column(Boolean, default=False)
    create_date: Mapped[datetime] = mapped_column(DateTime, server_default=NOW)
    last_op_date: Mapped[datetime] = mapped_column(DateTime, server_default=NOW, onupdate=NOW)

    ip_ranges: Mapped[list[IpRangeVO]] = relationship(
        lazy="raise", order_by=[IpRangeVO.create_date, IpRangeVO.uuid]
    )
    dns_entries: Mapped[list[L3NetworkDnsVO]] = relationship(
        lazy="raise", order_by=L3NetworkDnsVO.position
    )
    service_refs: Mapped[list[NetworkServiceL3NetworkRefVO]] = relationship(
        lazy="raise", order_by=NetworkServiceL3NetworkRefVO.id
    )


class UsedIpVO(Base):
    """One allocated address. UNIQUE (l3_network_uuid, ip_in_long) is the last guard
    against handing one IP out twice: the allocator retries when it fires."""

    __tablename__ = "UsedIpVO"
    __table_args__ = (
        # Also the allocator's scan: the used addresses of an L3, in address order.
        UniqueConstraint("l3_network_uuid", "ip_in_long"),
        Index("ix_UsedIpVO_create_date_uuid", "create_date", "uuid"),
    )

    uuid: Mapped[str] = mapped_column(String(32), primary_key=True)
    ip_range_uuid: Mapped[str] = mapped_column(String(32), ForeignKey("IpRangeVO.uuid"), index=True)
    l3_network_uuid: Mapped[str] = mapped_column(String(32), ForeignKey("L3NetworkVO.uuid"))
    ip: Mapped[str] = mapped_column(String(64), index=True)
    ip_in_long: Mapped[int] = mapped_column(BigInteger)
    gateway: Mapped[str] = mapped_column(String(64))
    netmask: Mapped[str] = mapped_column(String(64))
    ip_version: Mapped[int] = mapped_column(Integer, default=4)
    used_for: Mapped[str | None] = mapped_column(String(64))
    vm_nic_uuid: Mapped[str | None] = mapped_column(String(32), index=True)
    create_date: Mapped[datetime] = mapped_column(DateTime, server_default=NOW)
    last_op_date: Mapped[datetime] = mapped_column(DateTime, server_default=NOW, onupdate=NOW)
