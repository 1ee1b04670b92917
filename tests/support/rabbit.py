"""Per-test RabbitMQ vhosts, driven through rabbitmqctl without blocking the event loop.

A fresh vhost isolates a test's queues and exchanges completely (the shared portal queue and
the dead-letter queue included) and deleting it removes all of them at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import quote

from yarl import URL

from tests.support.real_server import RABBITMQ_URL, require_server
from zstackpy.core.ids import new_uuid


def require_rabbitmq() -> None:
    url = URL(RABBITMQ_URL)
    require_server("RabbitMQ", url.host or "127.0.0.1", url.port or 5672)


async def rabbitmqctl(*args: str) -> str:
    """Run ``rabbitmqctl``; raises RuntimeError with its output when it fails."""
    proc = await asyncio.create_subprocess_exec(
        "rabbitmqctl",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(
            f"rabbitmqctl {' '.join(args)} failed ({proc.returncode}): "
            f"{err.decode(errors='replace').strip() or out.decode(errors='replace').strip()}"
        )
    return out.decode(errors="replace")


def vhost_url(vhost: str, base: str = RABBITMQ_URL) -> str:
    # An AMQP URL's path is the vhost, percent-encoded.
    return str(URL(base).with_path("/" + quote(vhost, safe=""), encoded=True))


@asynccontextmanager
async def fresh_vhost(prefix: str = "zstack-test") -> AsyncIterator[str]:
    """A new vhost that guest may use; yields its AMQP URL and deletes it afterwards."""
    name = f"{prefix}-{new_uuid()}"
    await rabbitmqctl("add_vhost", name)
    try:
        await rabbitmqctl("set_permissions", "-p", name, "guest", ".*", ".*", ".*")
        yield vhost_url(name)
    finally:
        await rabbitmqctl("delete_vhost", name)


def vhost_of(url: str) -> str:
    path = URL(url).path
    return path[1:] if path.startswith("/") else path


async def close_connections(url: str, reason: str = "test: forced reconnect") -> None:
    """Close, on the broker side, every client connection to ``url``'s vhost."""
    await rabbitmqctl("close_all_connections", "-p", vhost_of(url), reason)
