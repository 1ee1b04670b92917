"""Messages of the contract suite. Wire names are global, hence the ``Contract`` prefix."""

from __future__ import annotations

from typing import ClassVar

from zstackpy.core.bus import API_PORTAL, Event, Message, NeedReplyMessage, Reply


class ContractEchoMsg(NeedReplyMessage):
    service: ClassVar[str] = "contract.echo"
    value: int = 0
    text: str = ""


class ContractEchoReply(Reply):
    value: int
    node: str


class ContractStrictMsg(NeedReplyMessage):
    """Only ever sent as a raw body that fails validation."""

    service: ClassVar[str] = "contract.echo"
    count: int


class ContractFailMsg(NeedReplyMessage):
    service: ClassVar[str] = "contract.fail"
    unexpected: bool = False


class ContractSlowMsg(NeedReplyMessage):
    service: ClassVar[str] = "contract.slow"


class ContractRouteMsg(NeedReplyMessage):
    service: ClassVar[str] = "contract.route"
    route_by: ClassVar[str | None] = "resource_uuid"
    resource_uuid: str
    value: int = 0


class ContractNodeReply(Reply):
    node: str
    value: int = 0


class ContractPortalMsg(NeedReplyMessage):
    service: ClassVar[str] = API_PORTAL
    value: int = 0


class ContractNoteMsg(Message):
    """Fire-and-forget, routed to the owner of ``resource_uuid``."""

    service: ClassVar[str] = "contract.note"
    route_by: ClassVar[str | None] = "resource_uuid"
    resource_uuid: str
    value: int = 0


class ContractNobodyMsg(NeedReplyMessage):
    service: ClassVar[str] = "contract.nobody"


class ContractHappenedEvent(Event):
    value: int


class ContractUnheardEvent(Event):
    value: int = 0


class ContractForwardMsg(NeedReplyMessage):
    """Enters through the portal; the portal handler forwards it to ``contract.owner``."""

    service: ClassVar[str] = API_PORTAL
    route_by: ClassVar[str | None] = "resource_uuid"
    resource_uuid: str
