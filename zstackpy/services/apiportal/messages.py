"""The base of API messages."""

from __future__ import annotations

from typing import ClassVar

from zstackpy.core.bus.message import NeedReplyMessage
from zstackpy.core.bus.transport import API_PORTAL


class APIMessage(NeedReplyMessage):
    """A request from outside (REST, RPC, CLI). It is sent to the shared
    ``zstack.message.api.portal`` queue, so any live node may take it; that node's portal
    forwards it to ``api_service`` on the ring owner of the resource it is about.
    """

    service: ClassVar[str] = API_PORTAL
    api_service: ClassVar[str] = ""
