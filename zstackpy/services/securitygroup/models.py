"""Security groups, their rules, the L3 networks they may be used on and their member NICs.

A member NIC's row goes with the NIC (``ON DELETE CASCADE``): a NIC deleted by its VM's
expunge or detach leaves no membership behind."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from zstackpy.core.db.models import NOW, Base


class SecurityGroupRuleVO(Base):
    __tablename__ = "SecurityGroupRuleVO"

    uuid: Mapped[str] = mapped_column(String(32), primary_key=True)
    security_group_uuid: Mapped[str] = mapped_column(
        String(32), ForeignKey("SecurityGroupVO.uuid"), index=True
    )
    type: Mapped[str] = mapped_column(String(32))  # Ingress, Egress
    ip_version: Mapped[int] = mapped_column(Integer, default=4)
    protocol: Mapped[str] = mapped_column(String(32))  # TCP, UDP, ICMP, ALL
    state: Mapped[str] = mapped_column(String(32), default="Enabled")
    priority: Mapped[int] = mapped_column(Integer, default=0)
    description: Mapped[str | None] = mapped_column(Text)
    action: Mapped[str] = mapped_column(String(32), default="ACCEPT")
    allowed_cidr: Mapped[str | None] = mapped_column(String(64))
    # Members of this group are the peers (instead of a CIDR).
    remote_security_group_uuid: Mapped[str | None] = mapped_column(
        String(32),
        # Named: the conventional name passes MariaDB's 64-character limit.
        ForeignKey("SecurityGroupVO.uuid", name="fk_SecurityGroupRuleVO_remote_sg_uuid"),
        index=True,
    )
    start_port: Mapped[int] = mapped_column(Integer, default=-1)
    end_port: Mapped[int] = mapped_column(Integer, default=-1)
    create_date: Mapped[datetime] = mapped_column(DateTime, server_default=NOW)
    last_op_date: Mapped[datetime] = mapped_column(DateTime, server_default=NOW, onupdate=NOW)


class SecurityGroupL3NetworkRefVO(Base):
    __tablename__ = "SecurityGroupL3NetworkRefVO"
    # Named: the conventional names pass MariaDB's 64-character limit.
    __table_args__ = (
        UniqueConstraint(
            "security_group_uuid",
            "l3_network_uuid",
            name="uq_SecurityGroupL3NetworkRefVO_sg_uuid_l3_uuid",
        ),
    )

    uuid: Mapped[str] = mapped_column(String(32), primary_key=True)
    security_group_uuid: Mapped[str] = mapped_column(
        String(32),
        ForeignKey("SecurityGroupVO.uuid", name="fk_SecurityGroupL3NetworkRefVO_sg_uuid"),
    )
    l3_network_uuid: Mapped[str] = mapped_column(
        String(32), ForeignKey("L3NetworkVO.uuid"), index=True
    )
    create_date: Mapped[datetime] = mapped_column(DateTime, server_default=NOW)
    last_op_date: Mapped[datetime] = mapped_column(DateTime, server_default=NOW, onupdate=NOW)


class VmNicSecurityGroupRefVO(Base):
    __tablename__ = "VmNicSecurityGroupRefVO"
    __table_args__ = (UniqueConstraint("vm_nic_uuid", "security_group_uuid"),)

    uuid: Mapped[str] = mapped_column(String(32), primary_key=True)
    vm_nic_uuid: Mapped[str] = mapped_column(
        String(32), ForeignKey("VmNicVO.uuid", ondelete="CASCADE")
    )
    security_group_uuid: Mapped[str] = mapped_column(
        String(32), ForeignKey("SecurityGroupVO.uuid"), index=True
    )
    vm_instance_uuid: Mapped[str] = mapped_column(String(32), index=True)
    priority: Mapped[int] = mapped_column(Integer, default=1)
    create_date: Mapped[datetime] = mapped_column(DateTime, server_default=NOW)
    last_op_date: Mapped[datetime] = mapped_column(DateTime, server_default=NOW, onupdate=NOW)


class SecurityGroupVO(Base):
    __tablename__ = "SecurityGroupVO"
    __table_args__ = (Index("ix_SecurityGroupVO_create_date_uuid", "create_date", "uuid"),)

    uuid: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(255), index=True)
    description: Mapped[str | None] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(32), default="Enabled")
    ip_version: Mapped[int] = mapped_column(Integer, default=4)
    create_date: Mapped[datetime] = mapped_column(DateTime, server_default=NOW)
    last_op_date: Mapped[datetime] = mapped_column(DateTime, server_default=NOW, onupdate=NOW)

    rules: Mapped[list[SecurityGroupRuleVO]] = relationship(
        lazy="raise",
        order_by=[SecurityGroupRuleVO.priority, SecurityGroupRuleVO.uuid],
        foreign_keys=[SecurityGroupRuleVO.security_group_uuid],
    )
    l3_refs: Mapped[list[SecurityGroupL3NetworkRefVO]] = relationship(
        lazy="raise", order_by=SecurityGroupL3NetworkRefVO.create_date
    )
