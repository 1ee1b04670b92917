"""The event loop the node and the simulator run on: uvloop's when it is installed.

Why uvloop: a node pinging 100,000 hosts spends about a fifth of its CPU in the loop's
own machinery (the selector, socket transports, handles, timers), which uvloop runs in C
on libuv; the services, the bus and every library on the loop (aiohttp, aiosqlite,
asyncmy, aio-pika) are written against asyncio's interfaces and run unchanged.
``ZSTACK_EVENT_LOOP=asyncio`` picks the standard loop instead (to rule the loop out
while chasing a problem, or to measure one beside the other).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

ENV = "ZSTACK_EVENT_LOOP"
UVLOOP = "uvloop"
STANDARD = "asyncio"


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's loop factory, or None for asyncio's own (asked for, or not installed)."""
    wanted = os.environ.get(ENV, UVLOOP).strip().lower()
    if wanted == STANDARD:
        return None
    if wanted != UVLOOP:
        raise ValueError(f"{ENV} must be {UVLOOP!r} or {STANDARD!r}, got {wanted!r}")
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def loop_name() -> str:
    """The loop the process runs on now (for logs and ``/health``)."""
    loop = asyncio.get_running_loop()
    return UVLOOP if type(loop).__module__.startswith("uvloop") else STANDARD


def run(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(main)`` on the loop ``loop_factory`` picks."""
    try:
        factory = loop_factory()
    except ValueError:
        main.close()  # never run: no "was never awaited" warning on top of the error
        raise
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(main)
