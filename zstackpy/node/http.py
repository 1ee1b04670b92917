"""The node's HTTP server: ``GET /health`` for operators and load balancers, the API
front-ends (``zstackpy.api.http``: REST v1, legacy RPC, jobs, OpenAPI) and the web UI's
static files (``zstackpy.web``: ``/`` and ``/ui/``).

``200 {"uuid", "state": "ready", ...}`` while the node serves, ``503`` with the reasons
when it does not (database unreachable, bus down, not in the ring, fenced, starting).
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

from aiohttp import web
from sqlalchemy import select

from zstackpy import __version__
from zstackpy.api.http import MAX_BODY_BYTES, api_middlewares, mount_api
from zstackpy.api.jobs import ApiJobService
from zstackpy.core.db import db_epoch
from zstackpy.node.agent_endpoints import mount_agent_endpoints
from zstackpy.web import mount_web

if TYPE_CHECKING:
    from zstackpy.node.node import ManagementNode

_DB_PROBE_TIMEOUT_S = 2.0


class HttpServer:
    def __init__(self, node: ManagementNode, host: str, port: int) -> None:
        self.node = node
        self.host = host
        self.port = port
        self.app = web.Application(client_max_size=MAX_BODY_BYTES, middlewares=api_middlewares())
        self.app.router.add_get("/health", self.health)
        jobs = node.services.get(ApiJobService)
        if isinstance(jobs, ApiJobService):
            mount_api(self.app, node.context, jobs)
        mount_agent_endpoints(self.app, node.context.agents)
        mount_web(self.app)
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        self._runner = web.AppRunner(self.app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        if self.port == 0:  # the OS chose a free port: report the real one
            self.port = int(self._runner.addresses[0][1])

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def health(self, request: web.Request) -> web.Response:
        node = self.node
        checks: dict[str, Any] = {}
        reasons: list[str] = []
        if node.state != "ready":
            reasons.append(f"node is {node.state}")
        try:
            async with asyncio.timeout(_DB_PROBE_TIMEOUT_S):
                async with node.context.db.session() as session:
                    await session.execute(select(db_epoch()))
            checks["database"] = "ok"
        except Exception as exc:
            checks["database"] = f"unreachable: {type(exc).__name__}"
            reasons.append("database unreachable")
        ring = node.context.ring
        checks["ring"] = "joined" if node.uuid in ring else "not joined"
        if node.uuid not in ring:
            reasons.append("not in the ring")
        checks["bus"] = "amqp" if node.settings.bus_url else "in-process"
        if not getattr(node.context.bus.transport, "is_connected", True):
            checks["bus"] += " (disconnected)"
            reasons.append("bus disconnected")
        body = {
            "uuid": node.uuid,
            "state": "ready" if not reasons else "not ready",
            "nodeState": str(node.state),
            "version": __version__,
            "uptimeSeconds": round(time.time() - node.started_at, 3),
            "ring": sorted(ring.nodes),
            "checks": checks,
            "reasons": reasons,
        }
        return web.json_response(body, status=200 if not reasons else 503)
