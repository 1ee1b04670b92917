"""Port-forwarding rules: a port range of a VIP forwarded to a port range of a VM NIC's
address, on the host running the VM (flat provider). Deleting the NIC detaches the rule
(``ON DELETE SET NULL``); rules of one VIP never share a port (the VIP service checks)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from zstackpy.core.db.models import NOW, Base


class PortForwardingRuleVO(Base):
    __tablename__ = "PortForwardingRuleVO"
    __table_args__ = (Index("ix_PortForwardingRuleVO_create_date_uuid", "create_date", "uuid"),)

    uuid: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(255), index=True)
    description: Mapped[str | None] = mapped_column(Text)
    vip_uuid: Mapped[str] = mapped_column(String(32), ForeignKey("VipVO.uuid"), index=True)
    vip_ip: Mapped[str] = mapped_column(String(64))
    vip_port_start: Mapped[int] = mapped_column(Integer)
    vip_port_end: Mapped[int] = mapped_column(Integer)
    private_port_start: Mapped[int] = mapped_column(Integer)
    private_port_end: Mapped[int] = mapped_column(Integer)
    protocol_type: Mapped[str] = mapped_column(String(16))
    vm_nic_uuid: Mapped[str | None] = mapped_column(
        String(32), ForeignKey("VmNicVO.uuid", ondelete="SET NULL"), index=True
    )
    guest_ip: Mapped[str | None] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(32), default="Enabled")
    allowed_cidr: Mapped[str | None] = mapped_column(String(64))
    create_date: Mapped[datetime] = mapped_column(DateTime, server_default=NOW)
    last_op_date: Mapped[datetime] = mapped_column(DateTime, server_default=NOW, onupdate=NOW)
