"""An agent as a process (``python -m agents.<name>``): its log format, and serving until
SIGTERM or SIGINT ends it cleanly."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Awaitable


def configure_logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


async def serve_until_signalled(serving: Awaitable[None]) -> None:
    """Await ``serving`` (the agent's serve loop) until SIGTERM or SIGINT cancels it: a
    clean stop, not a traceback."""
    main = asyncio.current_task()
    assert main is not None
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, main.cancel)
    with contextlib.suppress(asyncio.CancelledError):
        await serving
