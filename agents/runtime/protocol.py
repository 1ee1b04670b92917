"""Wire details of the agent protocol shared by the runtime's modules.

The node sends ``taskuuid``, ``callbackurl`` and ``Authorization: Bearer <host token>``;
results and reports go back as JSON. See ``agents/README.md`` for the whole protocol.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from yarl import URL

TASK_UUID = "taskuuid"
CALLBACK_URL = "callbackurl"
COMMAND_PATH = "commandpath"
AUTHORIZATION = "Authorization"

Handler = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]


@dataclass(frozen=True, slots=True)
class Command:
    """A registered command: its handler, and whether it answers in the HTTP response
    (``sync``) instead of by callback."""

    handler: Handler
    sync: bool = False


def error_response(status: int, error: str) -> web.Response:
    return web.json_response({"success": False, "error": error}, status=status)


def bearer_matches(header: str | None, token: str | None) -> bool:
    """True when ``header`` is ``Bearer <token>``; never true without an installed token."""
    if not token or not header:
        return False
    scheme, _, given = header.partition(" ")
    if scheme.lower() != "bearer":
        return False
    # Constant time, so the token cannot be guessed byte by byte from response times.
    return hmac.compare_digest(
        given.strip().encode("utf-8", "surrogateescape"), token.encode("utf-8")
    )


def is_loopback_url(url: str) -> bool:
    """True for an http(s) URL whose host is ``localhost`` or a loopback IP literal.

    No name is resolved: anything but a literal loopback address is refused.
    """
    try:
        parsed = URL(url)
    except ValueError:
        return False
    if parsed.scheme not in ("http", "https") or not parsed.host:
        return False
    if parsed.host == "localhost":
        return True
    try:
        return ipaddress.ip_address(parsed.host).is_loopback
    except ValueError:
        return False


async def read_command(request: web.Request) -> dict[str, Any]:
    """The request's JSON object; an empty body is ``{}``. Raises ValueError otherwise."""
    raw = await request.read()
    if not raw.strip():
        return {}
    body = json.loads(raw)
    if not isinstance(body, dict):
        raise ValueError("the command body must be a JSON object")
    return body
