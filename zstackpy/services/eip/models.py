"""Elastic IPs: a VIP NATed to a VM NIC's address on the host that runs the VM (flat
provider). Deleting the NIC detaches it (``ON DELETE SET NULL``); one EIP per VIP."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from zstackpy.core.db.models import NOW, Base


class EipVO(Base):
    __tablename__ = "EipVO"
    __table_args__ = (Index("ix_EipVO_create_date_uuid", "create_date", "uuid"),)

    uuid: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(255), index=True)
    description: Mapped[str | None] = mapped_column(Text)
    vip_uuid: Mapped[str] = mapped_column(String(32), ForeignKey("VipVO.uuid"), unique=True)
    vm_nic_uuid: Mapped[str | None] = mapped_column(
        String(32), ForeignKey("VmNicVO.uuid", ondelete="SET NULL"), index=True
    )
    state: Mapped[str] = mapped_column(String(32), default="Enabled")
    vip_ip: Mapped[str] = mapped_column(String(64), index=True)
    guest_ip: Mapped[str | None] = mapped_column(String(64))
    create_date: Mapped[datetime] = mapped_column(DateTime, server_default=NOW)
    last_op_date: Mapped[datetime] = mapped_column(DateTime, server_default=NOW, onupdate=NOW)
