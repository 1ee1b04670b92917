"""The port-forwarding service's contract: its inventory, its codes, what providers ask."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import ClassVar

from pydantic import BaseModel, Field

from zstackpy.api.messages import Inventory
from zstackpy.core.bus.message import NeedReplyMessage, Reply

PORT_FORWARDING_SERVICE = "portForwarding"
PF_TYPE = "PortForwardingRuleVO"


class PortForwardingErr(StrEnum):
    ALREADY_ATTACHED = "PF.1001"  # the rule is on a NIC already: detach it first
    SAME_NETWORK = "PF.1002"  # the NIC is on the VIP's own L3 network
    NOT_ATTACHED = "PF.1003"


class PortForwardingRuleInventory(Inventory):
    uuid: str
    name: str
    description: str | None = None
    vip_ip: str
    guest_ip: str | None = None
    vip_uuid: str
    vip_port_start: int
    vip_port_end: int
    private_port_start: int
    private_port_end: int
    vm_nic_uuid: str | None = None
    protocol_type: str
    state: str
    allowed_cidr: str | None = None
    create_date: datetime
    last_op_date: datetime


class PortForwardingView(BaseModel):
    """An attached rule, as a provider applies it."""

    rule_uuid: str
    vip_ip: str
    vip_l3_network_uuid: str
    vip_port_start: int
    vip_port_end: int
    private_port_start: int
    private_port_end: int
    protocol_type: str
    allowed_cidr: str | None = None
    vm_nic_uuid: str
    guest_ip: str | None = None


class GetNicPortForwardingsMsg(NeedReplyMessage):
    """The rules attached to these NICs (read on the asking node)."""

    service: ClassVar[str] = PORT_FORWARDING_SERVICE
    vm_nic_uuids: list[str] = Field(default_factory=list)


class GetNicPortForwardingsReply(Reply):
    rules: list[PortForwardingView] = Field(default_factory=list)


class DeletePortForwardingRuleMsg(NeedReplyMessage):
    """Delete a rule as part of its VIP's cascade, in the rule's queue (the VIP is going:
    it is not released)."""

    service: ClassVar[str] = PORT_FORWARDING_SERVICE
    route_by: ClassVar[str | None] = "uuid"
    uuid: str


class ApplyVipStateToPortForwardingRuleMsg(NeedReplyMessage):
    """The rule's VIP is being disabled (``vip_enabled`` False: take the rule off its host
    or router) or was enabled (put it back), in the rule's queue."""

    service: ClassVar[str] = PORT_FORWARDING_SERVICE
    route_by: ClassVar[str | None] = "uuid"
    uuid: str
    vip_enabled: bool
