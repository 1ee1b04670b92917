"""The VIP service's contract with the services that use VIPs (EIP, later port forwarding
and load balancers), and the VIP inventory."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import ClassVar

from pydantic import BaseModel, Field

from zstackpy.api.messages import Inventory
from zstackpy.core.bus.message import NeedReplyMessage, Reply

VIP_SERVICE = "vip"
VIP_TYPE = "VipVO"


class VipErr(StrEnum):
    IN_USE = "VIP.1001"  # another service (or another resource) already uses the VIP
    NOT_ENABLED = "VIP.1002"  # the VIP is disabled
    PORT_IN_USE = "VIP.1003"  # another port-forwarding rule has some of the ports


# Service types a VIP serves one resource of at a time; others (PortForwarding) share it.
EXCLUSIVE_USES = frozenset({"Eip", "LoadBalancer"})


class VipNetworkServicesRefInventory(Inventory):
    uuid: str  # the resource using the VIP
    service_type: str
    vip_uuid: str
    create_date: datetime
    last_op_date: datetime


class VipInventory(Inventory):
    uuid: str
    name: str
    description: str | None = None
    l3_network_uuid: str
    ip: str
    state: str
    gateway: str
    netmask: str
    prefix_len: int | None = None
    service_provider: str | None = None
    peer_l3_network_uuids: list[str] = Field(default_factory=list)
    services_refs: list[VipNetworkServicesRefInventory] = Field(default_factory=list)
    use_for: str | None = None
    system: bool = False
    used_ip_uuid: str | None = None  # ours: the address's UsedIp row
    create_date: datetime
    last_op_date: datetime


class VipView(BaseModel):
    uuid: str
    l3_network_uuid: str
    ip: str
    gateway: str
    netmask: str


class AcquireVipMsg(NeedReplyMessage):
    """Resource ``service_uuid`` of type ``use_for`` uses the VIP, in the VIP's queue. One
    service type at a time; an exclusive one (Eip) one resource at a time; port-forwarding
    rules (``protocol``, ``port_start``-``port_end``) never share a port. VIP.1001 /
    VIP.1003 otherwise. Acquiring again for the same resource succeeds."""

    service: ClassVar[str] = VIP_SERVICE
    route_by: ClassVar[str | None] = "vip_uuid"
    vip_uuid: str
    use_for: str
    service_uuid: str
    service_provider: str | None = None
    protocol: str | None = None
    port_start: int | None = None
    port_end: int | None = None


class AcquireVipReply(Reply):
    vip: VipView | None = None


class ReleaseVipMsg(NeedReplyMessage):
    """Resource ``service_uuid`` no longer uses the VIP; the last one out frees it
    (idempotent; a VIP that is gone is free)."""

    service: ClassVar[str] = VIP_SERVICE
    route_by: ClassVar[str | None] = "vip_uuid"
    vip_uuid: str
    service_uuid: str


class DeleteVipMsg(NeedReplyMessage):
    """Delete a VIP as part of a cascade (its L3 network goes), in the VIP's queue. Its
    address is not released: the L3's delete holds the L3's queue, and drops its addresses
    itself."""

    service: ClassVar[str] = VIP_SERVICE
    route_by: ClassVar[str | None] = "uuid"
    uuid: str
