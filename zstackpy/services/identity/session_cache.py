"""Live sessions remembered for a short while, so that an API call does not read its
session from the database every time (a burst of creates and their job polls would).

Each node keeps its own copy. An entry is used only until its session expires and at most
``ttl_s`` after it was read. Logging out or deleting an account sends ``ForgetSessionsMsg``
to every node of the ring and waits for their answers before it answers itself, so an
ended session is refused everywhere from then on; the ``ttl_s`` bound covers a node that
could not be told (a broker outage, a node joining at that moment).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar

from pydantic import Field

from zstackpy.api.messages import AuthContext
from zstackpy.core.bus.message import NeedReplyMessage
from zstackpy.core.clock import utcnow_seconds
from zstackpy.services.identity.messages import IDENTITY_SERVICE

DEFAULT_TTL_S = 10.0
DEFAULT_MAX_ENTRIES = 10_000


class ForgetSessionsMsg(NeedReplyMessage):
    """Sessions that stopped being valid, by uuid or every session of an account; sent to
    each node (``node=``), which drops them from its cache."""

    service: ClassVar[str] = IDENTITY_SERVICE
    session_uuids: list[str] = Field(default_factory=list)
    account_uuid: str | None = None


@dataclass(frozen=True, slots=True)
class _Entry:
    auth: AuthContext
    expired_date: datetime
    read_at: float  # time.monotonic()


class SessionCache:
    def __init__(self, ttl_s: float = DEFAULT_TTL_S, max_entries: int = DEFAULT_MAX_ENTRIES):
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self._entries: OrderedDict[str, _Entry] = OrderedDict()

    def get(self, session_uuid: str) -> AuthContext | None:
        entry = self._entries.get(session_uuid)
        if entry is None:
            return None
        if time.monotonic() - entry.read_at > self.ttl_s or entry.expired_date <= utcnow_seconds():
            del self._entries[session_uuid]
            return None
        return entry.auth

    def put(self, auth: AuthContext, expired_date: datetime) -> None:
        self._entries[auth.session_uuid] = _Entry(auth, expired_date, time.monotonic())
        self._entries.move_to_end(auth.session_uuid)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)  # the oldest read goes first

    def evict(self, event: ForgetSessionsMsg) -> None:
        for uuid in event.session_uuids:
            self._entries.pop(uuid, None)
        if event.account_uuid is not None:
            account = event.account_uuid
            for uuid in [u for u, e in self._entries.items() if e.auth.account_uuid == account]:
                del self._entries[uuid]
