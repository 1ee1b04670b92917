"""Virtual IPs: an address of a (public) L3 network that a network service (an EIP, port
forwarding, a load balancer) puts in front of guests. The address is a UsedIpVO row the
IPAM service allocated (``used_for`` "Vip"); it is released when the VIP goes."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, DateTime, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from zstackpy.core.db.models import NOW, Base


class VipNetworkServicesRefVO(Base):
    """One resource using a VIP (an EIP, a port-forwarding rule), by that resource's uuid.
    Port-forwarding rules record their ports, so two never take the same port of a VIP."""

    __tablename__ = "VipNetworkServicesRefVO"

    uuid: Mapped[str] = mapped_column(String(32), primary_key=True)
    vip_uuid: Mapped[str] = mapped_column(String(32), ForeignKey("VipVO.uuid"), index=True)
    service_type: Mapped[str] = mapped_column(String(64))
    protocol: Mapped[str | None] = mapped_column(String(16))
    port_start: Mapped[int | None] = mapped_column(Integer)
    port_end: Mapped[int | None] = mapped_column(Integer)
    create_date: Mapped[datetime] = mapped_column(DateTime, server_default=NOW)
    last_op_date: Mapped[datetime] = mapped_column(DateTime, server_default=NOW, onupdate=NOW)


class VipVO(Base):
    __tablename__ = "VipVO"
    __table_args__ = (Index("ix_VipVO_create_date_uuid", "create_date", "uuid"),)

    uuid: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(255), index=True)
    description: Mapped[str | None] = mapped_column(Text)
    l3_network_uuid: Mapped[str] = mapped_column(
        String(32), ForeignKey("L3NetworkVO.uuid"), index=True
    )
    ip: Mapped[str] = mapped_column(String(64), index=True)
    state: Mapped[str] = mapped_column(String(32), default="Enabled")
    gateway: Mapped[str] = mapped_column(String(64))
    netmask: Mapped[str] = mapped_column(String(64))
    prefix_len: Mapped[int | None] = mapped_column(Integer)
    # The provider of the service using it, and that service's type ("Eip", ...).
    service_provider: Mapped[str | None] = mapped_column(String(64))
    use_for: Mapped[str | None] = mapped_column(String(64))
    system: Mapped[bool] = mapped_column(Boolean, default=False)
    # No FK: the IPAM service owns UsedIpVO rows and releases them in its own queue.
    used_ip_uuid: Mapped[str | None] = mapped_column(String(32), index=True)
    create_date: Mapped[datetime] = mapped_column(DateTime, server_default=NOW)
    last_op_date: Mapped[datetime] = mapped_column(DateTime, server_default=NOW, onupdate=NOW)

    services_refs: Mapped[list[VipNetworkServicesRefVO]] = relationship(
        lazy="raise", order_by=VipNetworkServicesRefVO.create_date
    )
