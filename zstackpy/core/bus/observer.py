"""A hook that watches every message this node handles (metrics, the slow-message log).

The bus calls ``handling`` in the handler's task just before the handler runs and
``handled`` with the reply once it has one (an error reply for a raised error; nothing for
a handler that was cancelled). Both run on the hot path of every message: keep them to a
clock read and a few dict lookups, and never let them raise.
"""

from __future__ import annotations

from typing import Protocol

from zstackpy.core.bus.message import Message, Reply
from zstackpy.core.bus.transport import Envelope


class HandleObserver(Protocol):
    def handling(self, env: Envelope, msg: Message) -> object:
        """Before the handler; what it answers comes back to ``handled``."""
        ...

    def handled(self, token: object, env: Envelope, msg: Message, reply: Reply | None) -> None:
        """After the handler: ``reply`` is what it answered (None for a plain send)."""
        ...
