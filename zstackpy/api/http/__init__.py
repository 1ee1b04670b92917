"""The HTTP front-ends of the API: REST v1, legacy RPC, job polling, OpenAPI and docs, and
the event stream.

They only parse, build the API message, send it to the portal and render the answer.
``mount_api`` adds them all to the node's aiohttp application.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from aiohttp import web

from zstackpy.api.http.errors import error_shape_middleware, status_for
from zstackpy.api.http.events import EVENTS_PATH, EventHub
from zstackpy.api.http.frontend import ApiFrontend
from zstackpy.api.http.openapi import docs_page, openapi_document
from zstackpy.api.http.rest import V1, RestFrontend, Route
from zstackpy.api.http.rpc import RpcFrontend
from zstackpy.api.jobs import ApiJobService
from zstackpy.api.messages import all_apis
from zstackpy.core.context import NodeContext

# Big enough for any API body; ZStack's own requests are a few KiB.
MAX_BODY_BYTES = 1024 * 1024

__all__ = [
    "EVENT_HUB",
    "MAX_BODY_BYTES",
    "ApiFrontend",
    "EventHub",
    "api_middlewares",
    "mount_api",
    "status_for",
]

EVENT_HUB = web.AppKey("event_hub", EventHub)


def api_middlewares() -> list[Any]:
    """Pass to ``web.Application(middlewares=...)``: error-shaped 404/405/413."""
    return [error_shape_middleware]


class _Docs:
    """OpenAPI and the docs page, built on first request: a message whose fields cannot
    be described must not stop the node."""

    def __init__(self, routes: list[Route]) -> None:
        self.routes = routes
        self._openapi: bytes | None = None
        self._etag = ""
        self._page: str | None = None

    async def openapi(self, request: web.Request) -> web.Response:
        if self._openapi is None:
            self._openapi = json.dumps(openapi_document(self.routes)).encode()
            self._etag = '"' + hashlib.sha256(self._openapi).hexdigest()[:32] + '"'
        # zstack-cli revalidates its cached copy on every start: a 304 saves the ~400 KB.
        if request.headers.get("If-None-Match") == self._etag:
            return web.Response(status=304, headers={"ETag": self._etag})
        return web.Response(
            body=self._openapi, content_type="application/json", headers={"ETag": self._etag}
        )

    async def docs(self, request: web.Request) -> web.Response:
        if self._page is None:
            self._page = docs_page(self.routes)
        return web.Response(text=self._page, content_type="text/html")


def mount_api(app: web.Application, ctx: NodeContext, jobs: ApiJobService) -> list[Route]:
    """Add every API route to ``app``; returns the REST routes (for tests and docs).

    Raises ValueError when two declared APIs claim one route."""
    frontend = ApiFrontend(ctx, jobs)
    docs_view = _Docs([])
    # Fixed paths first: the generated ones must not shadow them.
    app.router.add_get(f"{V1}/openapi.json", docs_view.openapi)
    app.router.add_get(f"{V1}/docs", docs_view.docs)
    hub = EventHub(ctx)
    app[EVENT_HUB] = hub
    app.on_startup.append(hub.start)
    # on_shutdown runs before aiohttp waits for handlers: the streams end first.
    app.on_shutdown.append(hub.close)
    app.router.add_get(f"{V1}{EVENTS_PATH}", hub.handle)
    routes = RestFrontend(frontend).mount(app, all_apis())
    docs_view.routes = routes
    RpcFrontend(frontend).mount(app)
    return routes
