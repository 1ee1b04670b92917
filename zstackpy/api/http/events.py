"""``GET /zstack/v1/events``: server-sent events, filtered to the caller's account.

One ``EventHub`` per node subscribes to the stream's bus events once (ResourceChangedEvent,
JobCompletedEvent; the bus fans them out to every node, so a client sees the events of the
whole cluster on any node) and hands each one to every open stream that may see it: the
admin sees everything, another account only events whose ``accountUuid`` is its own.

Each stream has a bounded backlog. A client that reads too slowly to keep it from filling
gets a final ``event: error`` (QUEUE.1001) and the stream ends: its backlog is dropped at
once, so memory never grows with a stuck client. Comment lines every ``heartbeat_s`` keep
proxies from closing an idle stream, and when the node stops every stream gets a final
``event: error`` (SYS.1010) and ends, so clients reconnect to another node.

Frames: ``event: <resourceChanged|jobCompleted|error>\\nid: <event id>\\ndata: <json>\\n\\n``.
There is no replay: ``Last-Event-ID`` is ignored, a client that reconnects re-reads the
state it cares about through the query API.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import deque

from aiohttp import web

from zstackpy.api.events import JobCompletedEvent, ResourceChangedEvent, StreamEvent
from zstackpy.api.http.auth import authenticate
from zstackpy.api.http.errors import error_body, error_response
from zstackpy.api.messages import AuthContext
from zstackpy.core.context import NodeContext
from zstackpy.core.errors import ErrorInfo, KernelErr, SysErr, ZError
from zstackpy.core.ids import new_uuid

log = logging.getLogger(__name__)

EVENTS_PATH = "/events"
# Events a stream may have waiting for its client. A burst of this many (a cascade delete
# of a big zone) must fit; a client behind by more has lost track and must resync anyway.
BACKLOG_LIMIT = 1024
# Common proxy idle timeouts are 30-60 s (nginx proxy_read_timeout 60 s).
HEARTBEAT_S = 15.0
# A write that waits this long on a full socket means the client stopped reading.
WRITE_TIMEOUT_S = 30.0

_HEADERS = {
    "Content-Type": "text/event-stream; charset=utf-8",
    "Cache-Control": "no-cache",
    "X-Accel-Buffering": "no",  # nginx: pass each frame on at once
}
_CONNECTED = b": connected\n\n"
_HEARTBEAT = b": keep-alive\n\n"


def sse_frame(name: str, event_id: str, data: str) -> bytes:
    # ``data`` is one line of JSON (json never emits raw newlines), so one data: line.
    return f"event: {name}\nid: {event_id}\ndata: {data}\n\n".encode()


def _error_frame(info: ErrorInfo) -> bytes:
    return sse_frame("error", new_uuid(), json.dumps(error_body(info)))


class _Stream:
    """One client's stream: who it is, its backlog, and the final frame once it must end."""

    __slots__ = ("auth", "backlog", "final", "limit", "wakeup")

    def __init__(self, auth: AuthContext, limit: int) -> None:
        self.auth = auth
        self.limit = limit
        self.backlog: deque[bytes] = deque()
        self.final: bytes | None = None
        self.wakeup = asyncio.Event()

    def may_see(self, event: StreamEvent) -> bool:
        return self.auth.is_admin or (
            event.account_uuid is not None and event.account_uuid == self.auth.account_uuid
        )

    def offer(self, frame: bytes) -> None:
        if self.final is not None:
            return
        if len(self.backlog) >= self.limit:
            self.end(
                ErrorInfo(
                    code=KernelErr.QUEUE_FULL,
                    description="the client read the event stream too slowly; "
                    "reconnect and re-read the state through the query API",
                    details={"backlogLimit": self.limit},
                )
            )
            return
        self.backlog.append(frame)
        self.wakeup.set()

    def end(self, reason: ErrorInfo) -> None:
        if self.final is None:
            self.backlog.clear()  # frees the memory now, not when the writer wakes
            self.final = _error_frame(reason)
        self.wakeup.set()


# Frames joined into one write at most (a burst's backlog goes out in slices of this).
WRITE_CHUNK_BYTES = 256 * 1024


def _take(backlog: deque[bytes]) -> bytes:
    """The oldest frames of ``backlog``, removed from it, up to WRITE_CHUNK_BYTES (at
    least one frame)."""
    frames = [backlog.popleft()]
    size = len(frames[0])
    while backlog and size + len(backlog[0]) <= WRITE_CHUNK_BYTES:
        size += len(backlog[0])
        frames.append(backlog.popleft())
    return b"".join(frames)


class EventHub:
    """The node's event fan-out; ``handle`` is the route's handler."""

    def __init__(
        self,
        ctx: NodeContext,
        *,
        backlog_limit: int = BACKLOG_LIMIT,
        heartbeat_s: float = HEARTBEAT_S,
        write_timeout_s: float = WRITE_TIMEOUT_S,
    ) -> None:
        self.ctx = ctx
        self.backlog_limit = backlog_limit
        self.heartbeat_s = heartbeat_s
        self.write_timeout_s = write_timeout_s
        self._streams: set[_Stream] = set()
        self._subscribed = False
        self._closed = False

    @property
    def stream_count(self) -> int:
        return len(self._streams)

    # ----- lifecycle (aiohttp's on_startup / on_shutdown) ------------------------------

    async def start(self, app: web.Application | None = None) -> None:
        # The bus has no unsubscribe: subscribe once per hub, whatever restarts the app.
        if not self._subscribed:
            self._subscribed = True
            await self.ctx.bus.subscribe(ResourceChangedEvent, self.dispatch)
            await self.ctx.bus.subscribe(JobCompletedEvent, self.dispatch)
        self._closed = False

    async def close(self, app: web.Application | None = None) -> None:
        """End every stream: runs before aiohttp waits for its handlers to finish, so a
        stopping node is not held up by open streams."""
        self._closed = True
        reason = ErrorInfo(
            code=SysErr.NOT_READY,
            description="the management node is stopping; reconnect to another node",
            details={"node": self.ctx.node_uuid},
        )
        for stream in list(self._streams):
            stream.end(reason)

    # ----- fan-out ---------------------------------------------------------------------

    async def dispatch(self, event: StreamEvent) -> None:
        """The bus subscriber: never waits, so one slow stream cannot delay the bus or the
        other streams."""
        if self._closed or not self._streams:
            return
        frame: bytes | None = None
        for stream in list(self._streams):
            if stream.may_see(event):
                if frame is None:  # encoded once, for every stream that sees it
                    data = event.model_dump_json(exclude={"event_id"})
                    frame = sse_frame(event.stream_name, event.event_id, data)
                stream.offer(frame)

    # ----- the route -------------------------------------------------------------------

    async def handle(self, request: web.Request) -> web.StreamResponse:
        try:
            auth = await self._authenticate(request)
        except ZError as exc:
            return error_response(exc.info())
        if self._closed:
            return error_response(
                ErrorInfo(code=SysErr.NOT_READY, description="the management node is stopping")
            )
        stream = _Stream(auth, self.backlog_limit)
        response = web.StreamResponse(headers=_HEADERS)
        # Registered before the headers go out: once a client sees 200, it misses nothing.
        self._streams.add(stream)
        try:
            await response.prepare(request)
            if await self._pump(request, response, stream):
                await response.write_eof()
            return response
        except ConnectionError:
            # The client went away; aiohttp has nothing left to send it.
            return response
        finally:
            self._streams.discard(stream)

    async def _authenticate(self, request: web.Request) -> AuthContext:
        # A browser's EventSource cannot set headers: the query parameter stands in.
        return await authenticate(self.ctx, request, "the event stream", allow_query=True)

    async def _pump(
        self, request: web.Request, response: web.StreamResponse, stream: _Stream
    ) -> bool:
        """Write frames until the stream must end; False when the client stopped reading
        and the connection was aborted instead."""
        # The headers go out with the first bytes: send some now, so the client's request
        # returns as soon as the stream is registered.
        if not await self._write(request, response, _CONNECTED):
            return False
        while True:
            stream.wakeup.clear()
            while stream.backlog and stream.final is None:
                # What piled up goes in one write: in a burst, one send per frame was
                # a syscall and a wake-up per event.
                if not await self._write(request, response, _take(stream.backlog)):
                    return False
            if stream.final is not None:
                return await self._write(request, response, stream.final)
            try:
                async with asyncio.timeout(self.heartbeat_s):
                    await stream.wakeup.wait()
            except TimeoutError:
                if not await self._write(request, response, _HEARTBEAT):
                    return False

    async def _write(self, request: web.Request, response: web.StreamResponse, data: bytes) -> bool:
        try:
            async with asyncio.timeout(self.write_timeout_s):
                await response.write(data)
        except TimeoutError:
            log.info("event stream client %s stopped reading; closing it", request.remote)
            if request.transport is not None:
                request.transport.abort()
            return False
        return True
