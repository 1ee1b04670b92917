"""How long the work a message started may take: a call's deadline travels with it.

A call's timeout becomes the deadline of the message (wall-clock seconds, the envelope's
``zstack-deadline`` header, so it crosses nodes), and the handler runs with that deadline
as its context. A call made inside a handler with no timeout of its own then waits the
longer of the node's default and what is left of that deadline: a step of an API job that
may take 30 minutes is not cut off at the default 30 s (as ZStack carries an API's timeout
to the messages it sends), and nothing ever waits *less* than the default because of it
(a background task that inherited an old deadline is no worse off).
"""

from __future__ import annotations

import time
from contextvars import ContextVar

DEADLINE_HEADER = "zstack-deadline"

_deadline: ContextVar[float | None] = ContextVar("zstack_bus_deadline", default=None)


def call_timeout(explicit: float | None, default: float) -> float:
    """The timeout of a call: ``explicit`` when given, else the default stretched to what
    is left of the current deadline."""
    if explicit is not None:
        return explicit
    deadline = _deadline.get()
    if deadline is None:
        return default
    return max(default, deadline - time.time())


def header_for(timeout: float) -> str:
    """The deadline header of a message sent now with ``timeout``."""
    return f"{time.time() + timeout:.3f}"


def enter(header: str | None) -> None:
    """Make the message's deadline the current one (in the handler's own task)."""
    if header is None:
        _deadline.set(None)
        return
    try:
        _deadline.set(float(header))
    except ValueError:
        _deadline.set(None)  # a foreign publisher's header: no deadline rather than a crash
