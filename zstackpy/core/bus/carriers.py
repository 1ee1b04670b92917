"""Context that crosses nodes with a call: headers out with the message, headers back with
the reply.

On one node a handler runs in a task created from its caller's context, so context
variables reach it by themselves. A message to another node loses them; a carrier puts
what matters into the message's headers, sets it up again around the handler there, and
brings the handler's contribution back in the reply's headers to the caller's context
(the flow traces a job collects, for one: ``core.flow.collect``). Carriers act only on
calls that leave the node, so nothing is carried twice.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

Headers = dict[str, str]


class ContextCarrier(Protocol):
    def outgoing(self) -> Headers:
        """Caller side, a message leaving the node: headers to send (empty: nothing)."""
        ...

    def handling(self, headers: Headers) -> Callable[[], Headers] | None:
        """Handler side, in the handler's task before it runs: set up from ``headers``;
        answer what to call after it ran for the reply's headers (None: nothing to do)."""
        ...

    def replied(self, headers: Headers) -> None:
        """Caller side, in the caller's task: the reply's headers arrived."""
        ...
