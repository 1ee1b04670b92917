"""Load balancers on a VIP, their listeners (a VIP port forwarded to an instance port)
and each listener's backend NICs."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from zstackpy.core.db.models import NOW, Base


class LoadBalancerListenerVmNicRefVO(Base):
    __tablename__ = "LoadBalancerListenerVmNicRefVO"
    __table_args__ = (UniqueConstraint("listener_uuid", "vm_nic_uuid"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    listener_uuid: Mapped[str] = mapped_column(
        String(32),
        ForeignKey(
            "LoadBalancerListenerVO.uuid", ondelete="CASCADE", name="fk_LbListenerNicRef_listener"
        ),
    )
    # A NIC that goes (its VM expunged) leaves every listener.
    vm_nic_uuid: Mapped[str] = mapped_column(
        String(32),
        ForeignKey("VmNicVO.uuid", ondelete="CASCADE", name="fk_LbListenerNicRef_vm_nic"),
        index=True,
    )
    status: Mapped[str] = mapped_column(String(32), default="Active")
    create_date: Mapped[datetime] = mapped_column(DateTime, server_default=NOW)
    last_op_date: Mapped[datetime] = mapped_column(DateTime, server_default=NOW, onupdate=NOW)


class LoadBalancerListenerVO(Base):
    __tablename__ = "LoadBalancerListenerVO"
    __table_args__ = (
        # Named: the conventional name passes MariaDB's 64-character limit.
        UniqueConstraint(
            "load_balancer_uuid", "protocol", "load_balancer_port", name="uq_LbListener_lb_port"
        ),
        Index("ix_LoadBalancerListenerVO_create_date_uuid", "create_date", "uuid"),
    )

    uuid: Mapped[str] = mapped_column(String(32), primary_key=True)
    load_balancer_uuid: Mapped[str] = mapped_column(
        String(32), ForeignKey("LoadBalancerVO.uuid", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(255))
    description: Mapped[str | None] = mapped_column(Text)
    protocol: Mapped[str] = mapped_column(String(32))
    load_balancer_port: Mapped[int] = mapped_column(Integer)
    instance_port: Mapped[int] = mapped_column(Integer)
    create_date: Mapped[datetime] = mapped_column(DateTime, server_default=NOW)
    last_op_date: Mapped[datetime] = mapped_column(DateTime, server_default=NOW, onupdate=NOW)

    vm_nic_refs: Mapped[list[LoadBalancerListenerVmNicRefVO]] = relationship(
        lazy="raise", order_by=LoadBalancerListenerVmNicRefVO.id
    )


class LoadBalancerVO(Base):
    __tablename__ = "LoadBalancerVO"
    __table_args__ = (Index("ix_LoadBalancerVO_create_date_uuid", "create_date", "uuid"),)

    uuid: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(255), index=True)
    description: Mapped[str | None] = mapped_column(Text)
    vip_uuid: Mapped[str] = mapped_column(String(32), ForeignKey("VipVO.uuid"), index=True)
    state: Mapped[str] = mapped_column(String(32), default="Enabled")
    type: Mapped[str] = mapped_column(String(32), default="Shared")
    create_date: Mapped[datetime] = mapped_column(DateTime, server_default=NOW)
    last_op_date: Mapped[datetime] = mapped_column(DateTime, server_default=NOW, onupdate=NOW)

    listeners: Mapped[list[LoadBalancerListenerVO]] = relationship(
        lazy="raise", order_by=LoadBalancerListenerVO.create_date
    )
