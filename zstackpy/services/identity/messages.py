"""The identity service's contract (internal messages; API messages live beside them)."""

from __future__ import annotations

from typing import ClassVar

from zstackpy.api.messages import AuthContext
from zstackpy.core.bus.message import NeedReplyMessage, Reply

IDENTITY_SERVICE = "identity"


class ValidateSessionMsg(NeedReplyMessage):
    """Sent by the API portal for every API message that needs a session. Answers the
    caller's AuthContext, or an ID.1001 error for an unknown or expired session."""

    service: ClassVar[str] = IDENTITY_SERVICE
    session_uuid: str


class ValidateSessionReply(Reply):
    auth: AuthContext
