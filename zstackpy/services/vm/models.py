"""Tables of the VM instances: VmInstanceVO, its NICs (VmNicVO) and the sequence that
numbers VMs (ZStack's vmInternalId, which names NICs ``vnic<internalId>.<deviceId>`` on
hosts).

References to what a VM was made from or placed on (image, offering, default L3, cluster,
hosts) are ``ON DELETE SET NULL``, as in ZStack: deleting an image or an offering leaves
its VMs alone, and a deleted host or cluster (whose VMs the cascade stopped first) is
forgotten. The zone is a hard reference: a zone's VMs are expunged before it goes.
Relationships are ``lazy="raise"``: nested rows are loaded with explicit options, never
lazily on the event loop.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from zstackpy.core.db.models import NOW, Base
from zstackpy.services.network.models import UsedIpVO
from zstackpy.services.volume.models import VolumeVO


class VmInstanceSequenceNumberVO(Base):
    """One row per VM ever created: its auto-increment id is the VM's internal id, so ids
    are unique and increasing on SQLite and MariaDB alike, with no read-modify-write race
    between concurrent creates (ZStack's VmInstanceSequenceNumberVO). Rows are kept:
    SQLite would hand a deleted highest id out again."""

    __tablename__ = "VmInstanceSequenceNumberVO"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    vm_instance_uuid: Mapped[str] = mapped_column(String(32))
    create_date: Mapped[datetime] = mapped_column(DateTime, server_default=NOW)


class VmNicVO(Base):
    __tablename__ = "VmNicVO"
    __table_args__ = (Index("ix_VmNicVO_create_date_uuid", "create_date", "uuid"),)

    uuid: Mapped[str] = mapped_column(String(32), primary_key=True)
    vm_instance_uuid: Mapped[str] = mapped_column(
        String(32), ForeignKey("VmInstanceVO.uuid"), index=True
    )
    l3_network_uuid: Mapped[str] = mapped_column(
        String(32), ForeignKey("L3NetworkVO.uuid"), index=True
    )
    # The UsedIpVO row of the NIC's address (no FK: the IPAM service owns those rows and
    # releases them in its own queue).
    used_ip_uuid: Mapped[str | None] = mapped_column(String(32), index=True)
    ip: Mapped[str | None] = mapped_column(String(64), index=True)
    netmask: Mapped[str | None] = mapped_column(String(64))
    gateway: Mapped[str | None] = mapped_column(String(64))
    ip_version: Mapped[int] = mapped_column(Integer, default=4)
    # Unique: two NICs with one MAC on a network would break it; creation retries with a
    # new random MAC when the index fires.
    mac: Mapped[str] = mapped_column(String(17), unique=True)
    device_id: Mapped[int] = mapped_column(Integer)
    internal_name: Mapped[str] = mapped_column(String(128), index=True)
    hypervisor_type: Mapped[str | None] = mapped_column(String(32))
    driver_type: Mapped[str] = mapped_column(String(32), default="virtio")
    type: Mapped[str] = mapped_column(String(32), default="VNIC")
    state: Mapped[str] = mapped_column(String(32), default="enable")
    create_date: Mapped[datetime] = mapped_column(DateTime, server_default=NOW)
    last_op_date: Mapped[datetime] = mapped_column(DateTime, server_default=NOW, onupdate=NOW)

    used_ip: Mapped[UsedIpVO | None] = relationship(
        UsedIpVO,
        primaryjoin="foreign(VmNicVO.used_ip_uuid) == UsedIpVO.uuid",
        viewonly=True,
        lazy="raise",
    )


class VmInstanceVO(Base):
    __tablename__ = "VmInstanceVO"
    __table_args__ = (
        # The query API's default order: paged queries walk this index instead of sorting.
        Index("ix_VmInstanceVO_create_date_uuid", "create_date", "uuid"),
    )

    uuid: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(255), index=True)
    description: Mapped[str | None] = mapped_column(Text)
    zone_uuid: Mapped[str] = mapped_column(String(32), ForeignKey("ZoneVO.uuid"), index=True)
    cluster_uuid: Mapped[str | None] = mapped_column(
        String(32), ForeignKey("ClusterVO.uuid", ondelete="SET NULL"), index=True
    )
    host_uuid: Mapped[str | None] = mapped_column(
        String(32), ForeignKey("HostVO.uuid", ondelete="SET NULL"), index=True
    )
    last_host_uuid: Mapped[str | None] = mapped_column(
        String(32), ForeignKey("HostVO.uuid", ondelete="SET NULL"), index=True
    )
    instance_offering_uuid: Mapped[str | None] = mapped_column(
        String(32), ForeignKey("InstanceOfferingVO.uuid", ondelete="SET NULL"), index=True
    )
    image_uuid: Mapped[str | None] = mapped_column(
        String(32), ForeignKey("ImageVO.uuid", ondelete="SET NULL"), index=True
    )
    # No FK: the volume service owns volumes (and their table comes first in the chain).
    root_volume_uuid: Mapped[str | None] = mapped_column(String(32), index=True)
    default_l3_network_uuid: Mapped[str | None] = mapped_column(
        String(32), ForeignKey("L3NetworkVO.uuid", ondelete="SET NULL"), index=True
    )
    type: Mapped[str] = mapped_column(String(32), default="UserVm")
    hypervisor_type: Mapped[str | None] = mapped_column(String(32), index=True)
    cpu_num: Mapped[int] = mapped_column(Integer)
    cpu_speed: Mapped[int] = mapped_column(BigInteger, default=0)
    memory_size: Mapped[int] = mapped_column(BigInteger)
    reserved_memory_size: Mapped[int] = mapped_column(BigInteger, default=0)
    platform: Mapped[str | None] = mapped_column(String(32))
    architecture: Mapped[str | None] = mapped_column(String(32))
    guest_os_type: Mapped[str | None] = mapped_column(String(255))
    allocator_strategy: Mapped[str | None] = mapped_column(String(128))
    internal_id: Mapped[int] = mapped_column(BigInteger, unique=True)
    state: Mapped[str] = mapped_column(String(32), index=True)
    create_date: Mapped[datetime] = mapped_column(DateTime, server_default=NOW)
    last_op_date: Mapped[datetime] = mapped_column(
        DateTime, server_default=NOW, onupdate=NOW, index=True
    )

    vm_nics: Mapped[list[VmNicVO]] = relationship(lazy="raise", order_by=VmNicVO.device_id)
    # Read-only: the volume service owns volume rows (root first: device 0).
    all_volumes: Mapped[list[VolumeVO]] = relationship(
        VolumeVO,
        primaryjoin="foreign(VolumeVO.vm_instance_uuid) == VmInstanceVO.uuid",
        viewonly=True,
        lazy="raise",
        order_by=VolumeVO.device_id,
    )
