"""The HostVO table: what every host has whatever its hypervisor, capacity included.

Hypervisor plugins extend it by joined-table inheritance, as ZStack's KVMHostVO extends
HostVO: ``hypervisor_type`` selects the subclass, and each subclass loads inline with its
base (``polymorphic_load="inline"``), so ``session.get(HostVO, uuid)`` answers the full
KVM host in one statement and nothing is ever lazy-loaded on the event loop.

Capacity, in the units the allocator compares:
- CPU in vCPUs: ``total_cpu_capacity = cpu_num * host cpu.overProvisioning.ratio`` (ratio
  read at each connect); a VM reserves its ``cpuNum``.
- memory in bytes: ``total_memory_capacity = physical memory - kvm reservedMemory``; a VM
  reserves its memory size.
``available_*`` is total minus what VMs reserved; it changes only in the host's work queue.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from zstackpy.core.db.models import NOW, Base


class HostVO(Base):
    __tablename__ = "HostVO"
    __table_args__ = (
        # The query API's default order: paged queries walk this index instead of sorting.
        Index("ix_HostVO_create_date_uuid", "create_date", "uuid"),
    )

    uuid: Mapped[str] = mapped_column(String(32), primary_key=True)
    zone_uuid: Mapped[str] = mapped_column(String(32), ForeignKey("ZoneVO.uuid"), index=True)
    cluster_uuid: Mapped[str] = mapped_column(String(32), ForeignKey("ClusterVO.uuid"), index=True)
    name: Mapped[str] = mapped_column(String(255), index=True)
    description: Mapped[str | None] = mapped_column(Text)
    # Unique: two hosts with one address would be one machine counted twice.
    management_ip: Mapped[str] = mapped_column(String(255), unique=True)
    hypervisor_type: Mapped[str] = mapped_column(String(32), index=True)
    state: Mapped[str] = mapped_column(String(32), default="Enabled", index=True)
    status: Mapped[str] = mapped_column(String(32), default="Connecting", index=True)
    architecture: Mapped[str | None] = mapped_column(String(32))
    cpu_num: Mapped[int] = mapped_column(Integer, default=0)
    cpu_sockets: Mapped[int] = mapped_column(Integer, default=0)
    total_cpu_capacity: Mapped[int] = mapped_column(BigInteger, default=0)
    available_cpu_capacity: Mapped[int] = mapped_column(BigInteger, default=0)
    total_physical_memory: Mapped[int] = mapped_column(BigInteger, default=0)
    total_memory_capacity: Mapped[int] = mapped_column(BigInteger, default=0)
    available_memory_capacity: Mapped[int] = mapped_column(BigInteger, default=0)
    create_date: Mapped[datetime] = mapped_column(DateTime, server_default=NOW)
    last_op_date: Mapped[datetime] = mapped_column(DateTime, server_default=NOW, onupdate=NOW)

    __mapper_args__ = {"polymorphic_on": "hypervisor_type"}  # noqa: RUF012 - SQLAlchemy's API
