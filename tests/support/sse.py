"""A server-sent-events reader for tests: ``GET /zstack/v1/events`` over aiohttp."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import aiohttp


@dataclass
class SseEvent:
    name: str
    id: str
    data: Any


@dataclass
class EventStream:
    response: aiohttp.ClientResponse
    comments: list[str] = field(default_factory=list)
    ended: bool = False

    async def next(self, timeout: float = 5.0) -> SseEvent | None:
        """The next event; None when the server ended the stream. Raises TimeoutError."""
        name, event_id = "message", ""
        data: list[str] = []
        async with asyncio.timeout(timeout):
            while True:
                raw = await self.response.content.readline()
                if not raw:
                    self.ended = True
                    return None
                line = raw.decode().rstrip("\n")
                if line == "":
                    if data:
                        return SseEvent(name, event_id, json.loads("\n".join(data)))
                    continue
                if line.startswith(":"):
                    self.comments.append(line[1:].strip())
                    continue
                key, _, value = line.partition(":")
                value = value.removeprefix(" ")
                if key == "event":
                    name = value
                elif key == "id":
                    event_id = value
                elif key == "data":
                    data.append(value)

    async def until(self, predicate: Callable[[SseEvent], bool], timeout: float = 5.0) -> SseEvent:
        """Skip events until one matches; raises TimeoutError or AssertionError at the end."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            event = await self.next(max(0.0, deadline - loop.time()))
            if event is None:
                raise AssertionError("the stream ended before the expected event")
            if predicate(event):
                return event

    async def quiet(self, seconds: float) -> list[SseEvent]:
        """Every event that arrives within ``seconds`` (the stream staying open)."""
        seen: list[SseEvent] = []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while (left := deadline - loop.time()) > 0:
            try:
                event = await self.next(left)
            except TimeoutError:
                break
            if event is None:
                break
            seen.append(event)
        return seen


@asynccontextmanager
async def open_stream(
    http: aiohttp.ClientSession, base: str, session_uuid: str | None
) -> AsyncIterator[EventStream]:
    """Open the stream (asserting 200 and the SSE content type) and close it afterwards."""
    headers = {"Authorization": f"OAuth {session_uuid}"} if session_uuid else {}
    async with http.get(
        f"{base}/zstack/v1/events",
        headers=headers,
        timeout=aiohttp.ClientTimeout(total=None, sock_read=None),
    ) as response:
        assert response.status == 200, await response.text()
        assert response.content_type == "text/event-stream"
        yield EventStream(response)
