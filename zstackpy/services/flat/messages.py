"""The flat provider's contract on the bus: its own messages (it serves no API)."""

from __future__ import annotations

from typing import ClassVar

from zstackpy.core.bus.message import NeedReplyMessage, Reply

FLAT_SERVICE = "flatNetworkProvider"


class GetDhcpServerIpMsg(NeedReplyMessage):
    """The DHCP server address of an L3 network, allocated when it has none. Routed by
    the L3 and run in its flat-DHCP queue, so two VMs starting at once on one network
    (on any nodes) get one address, not two."""

    service: ClassVar[str] = FLAT_SERVICE
    route_by: ClassVar[str | None] = "l3_network_uuid"
    l3_network_uuid: str


class GetDhcpServerIpReply(Reply):
    ip: str = ""
