"""The network domain's contract with other services: IP allocation and what a VM needs
to know about its networks. (API messages live in ``l2/api.py`` and ``l3/api.py``.)

Every message about an L3 network is routed by ``l3_network_uuid`` to the node owning that
L3, and runs in the L3's work queue, so allocations of one L3 never race.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel, Field, model_validator

from zstackpy.core.bus.message import NeedReplyMessage, Reply
from zstackpy.services.network.inventories import UsedIpInventory

L2_NETWORK_SERVICE = "l2Network"
L3_NETWORK_SERVICE = "l3Network"
IPAM_SERVICE = "ipam"


# ``used_for`` of the address a network service holds for itself on an L3 network (the
# flat provider's DHCP server): it goes with the network and does not keep it in use.
USED_FOR_DHCP_SERVER = "DhcpServer"


class AllocateIpMsg(NeedReplyMessage):
    """Allocate one address of an L3 network (for a VM NIC, a VIP, a DHCP server...).

    ``required_ip``: exactly this address (L3.1003 when it is taken, the gateway, or in no
    range of the L3); ``ip_range_uuid``: any free address of that range. Otherwise the first
    free address after the last one handed out, range by range. A full L3 (or range) answers
    L3.1005 naming its ranges. Concurrent allocations are batched: one transaction serves
    all the requests that waited for the L3's queue."""

    service: ClassVar[str] = IPAM_SERVICE
    route_by: ClassVar[str | None] = "l3_network_uuid"
    l3_network_uuid: str
    required_ip: str | None = None
    ip_range_uuid: str | None = None
    used_for: str | None = None  # ZStack's IpAllocatedReason: "Vip", "DhcpServer", ...
    vm_nic_uuid: str | None = None


class AllocateIpReply(Reply):
    ip: UsedIpInventory | None = None


class ReleaseIpMsg(NeedReplyMessage):
    """Give an allocated address back, by its UsedIp uuid or by the address itself.
    Idempotent: releasing an address that is not allocated succeeds."""

    service: ClassVar[str] = IPAM_SERVICE
    route_by: ClassVar[str | None] = "l3_network_uuid"
    l3_network_uuid: str
    used_ip_uuid: str | None = None
    ip: str | None = None

    @model_validator(mode="after")
    def _one_of(self) -> ReleaseIpMsg:
        if (self.used_ip_uuid is None) == (self.ip is None):
            raise ValueError("give exactly one of used_ip_uuid and ip")
        return self


class L3NetworkSummary(BaseModel):
    """What a VM (or the allocator) needs to know about an L3 network and its wire."""

    uuid: str
    name: str
    zone_uuid: str
    l2_network_uuid: str
    state: str
    system: bool
    category: str
    dns: list[str] = Field(default_factory=list)
    dns_domain: str | None = None
    physical_interface: str
    vlan: int | None = None  # None: a NoVlan network
    bridge_name: str  # the bridge a NIC on this L3 plugs into on every host
    attached_cluster_uuids: list[str] = Field(default_factory=list)


class GetL3NetworksMsg(NeedReplyMessage):
    """Describe L3 networks (reads only; any node answers). A missing uuid is SYS.1003."""

    service: ClassVar[str] = L3_NETWORK_SERVICE
    l3_network_uuids: list[str]


class GetL3NetworksReply(Reply):
    networks: list[L3NetworkSummary] = Field(default_factory=list)
