"""The EIP service's contract: its inventory, its codes, and what providers ask it."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import ClassVar

from pydantic import BaseModel, Field

from zstackpy.api.messages import Inventory
from zstackpy.core.bus.message import NeedReplyMessage, Reply

EIP_SERVICE = "eip"
EIP_TYPE = "EipVO"


class EipErr(StrEnum):
    ALREADY_ATTACHED = "EIP.1001"  # the EIP is on a NIC already: detach it first
    SAME_NETWORK = "EIP.1002"  # the NIC is on the VIP's own L3 network
    NIC_HAS_EIP = "EIP.1003"  # the NIC already has an EIP
    NOT_ATTACHED = "EIP.1004"


class EipInventory(Inventory):
    uuid: str
    name: str
    description: str | None = None
    vm_nic_uuid: str | None = None
    vip_uuid: str
    state: str
    vip_ip: str
    guest_ip: str | None = None
    create_date: datetime
    last_op_date: datetime


class EipView(BaseModel):
    """An attached EIP, as a provider NATs it."""

    eip_uuid: str
    vip_uuid: str
    vip_ip: str
    vip_l3_network_uuid: str
    vip_netmask: str
    vip_gateway: str
    vm_nic_uuid: str
    guest_ip: str | None = None


class GetNicEipsMsg(NeedReplyMessage):
    """The EIPs attached to these NICs, or to any NIC on ``l3_network_uuid`` (read on the
    asking node)."""

    service: ClassVar[str] = EIP_SERVICE
    vm_nic_uuids: list[str] = Field(default_factory=list)
    l3_network_uuid: str | None = None


class GetNicEipsReply(Reply):
    eips: list[EipView] = Field(default_factory=list)


class DeleteEipMsg(NeedReplyMessage):
    """Delete an EIP as part of its VIP's cascade, in the EIP's queue. The VIP is not
    released: its delete holds its queue, and it is going anyway."""

    service: ClassVar[str] = EIP_SERVICE
    route_by: ClassVar[str | None] = "uuid"
    uuid: str


class ApplyVipStateToEipMsg(NeedReplyMessage):
    """The EIP's VIP is being disabled (``vip_enabled`` False: take the EIP off its host
    or router) or was enabled (put it back), in the EIP's queue."""

    service: ClassVar[str] = EIP_SERVICE
    route_by: ClassVar[str | None] = "uuid"
    uuid: str
    vip_enabled: bool
