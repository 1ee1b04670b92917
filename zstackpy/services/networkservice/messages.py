"""What other services ask the network-service service."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from zstackpy.core.bus.message import NeedReplyMessage, Reply

NETWORK_SERVICE = "networkService"


class GetL3NetworkServicesMsg(NeedReplyMessage):
    """The provider type serving each service type of these L3 networks (read on the node
    that asks: the answer is the database's)."""

    service: ClassVar[str] = NETWORK_SERVICE
    l3_network_uuids: list[str]


class GetL3NetworkServicesReply(Reply):
    # l3 uuid -> service type -> provider type; an L3 without services is absent.
    services: dict[str, dict[str, str]] = Field(default_factory=dict)

    def provider_of(self, l3_uuid: str, service_type: str) -> str | None:
        return self.services.get(l3_uuid, {}).get(service_type)
