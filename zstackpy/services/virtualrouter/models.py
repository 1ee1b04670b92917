"""The virtual-router tables: offerings (an instance offering of type ``VirtualRouter``
with the appliance's image and networks) and appliance VMs (a VM of type ``ApplianceVm``
with what the node needs to reach its agent)."""

from __future__ import annotations

from sqlalchemy import Boolean, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from zstackpy.core.db.models import Base
from zstackpy.services.offering.models import InstanceOfferingVO
from zstackpy.services.vm.models import VmInstanceVO


class VirtualRouterOfferingVO(Base):
    """The appliance part of an InstanceOfferingVO (same uuid; it goes with the offering)."""

    __tablename__ = "VirtualRouterOfferingVO"

    uuid: Mapped[str] = mapped_column(
        String(32), ForeignKey("InstanceOfferingVO.uuid", ondelete="CASCADE"), primary_key=True
    )
    zone_uuid: Mapped[str] = mapped_column(String(32), index=True)
    management_network_uuid: Mapped[str] = mapped_column(String(32), index=True)
    public_network_uuid: Mapped[str] = mapped_column(String(32), index=True)
    image_uuid: Mapped[str] = mapped_column(String(32), index=True)
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)

    offering: Mapped[InstanceOfferingVO] = relationship(lazy="raise")


class ApplianceVmVO(Base):
    """The appliance part of a VmInstanceVO (same uuid; it goes with the VM). A virtual
    router serves one guest L3 network (``guest_l3_network_uuid``)."""

    __tablename__ = "ApplianceVmVO"

    uuid: Mapped[str] = mapped_column(
        String(32), ForeignKey("VmInstanceVO.uuid", ondelete="CASCADE"), primary_key=True
    )
    appliance_vm_type: Mapped[str] = mapped_column(String(64), default="VirtualRouter")
    management_network_uuid: Mapped[str] = mapped_column(String(32), index=True)
    default_route_l3_network_uuid: Mapped[str] = mapped_column(String(32))
    public_network_uuid: Mapped[str] = mapped_column(String(32), index=True)
    guest_l3_network_uuid: Mapped[str] = mapped_column(String(32), unique=True)
    offering_uuid: Mapped[str] = mapped_column(String(32), index=True)
    status: Mapped[str] = mapped_column(String(32), default="Connecting")
    agent_port: Mapped[int] = mapped_column(Integer, default=7272)
    # What the node proves itself with to the appliance's agent (given at its boot).
    token: Mapped[str] = mapped_column(String(64))

    vm: Mapped[VmInstanceVO] = relationship(lazy="raise")
