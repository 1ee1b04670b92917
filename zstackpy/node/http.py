"""The node's HTTP server: ``GET /health`` for operators and load balancers, the API
front-ends (``zstackpy.api.http``: REST v1, legacy RPC, jobs, OpenAPI) and the web UI's
static files (``zstackpy.web``: ``/`` and ``/ui/``).

``200 {"uuid", "state": "ready", ...}`` while the node serves, ``503`` with the reasons
when it does not (``node/health.py``: database unreachable, bus down, not in the ring,
heartbeat stale, fenced, starting). ``GET /metrics``: Prometheus metrics (``node/metrics``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from zstackpy.api.http import MAX_BODY_BYTES, api_middlewares, mount_api
from zstackpy.api.jobs import ApiJobService
from zstackpy.node.agent_endpoints import mount_agent_endpoints
from zstackpy.node.metrics import CONTENT_TYPE
from zstackpy.web import mount_web

if TYPE_CHECKING:
    from zstackpy.node.node import ManagementNode


class HttpServer:
    def __init__(self, node: ManagementNode, host: str, port: int) -> None:
        self.node = node
        self.host = host
        self.port = port
        self.app = web.Application(client_max_size=MAX_BODY_BYTES, middlewares=api_middlewares())
        self.app.router.add_get("/health", self.health)
        self.app.router.add_get("/metrics", self.metrics)
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
        report = await self.node.health.check()
        return web.json_response(report.to_dict(), status=200 if report.is_ready else 503)

    async def metrics(self, request: web.Request) -> web.Response:
        metrics = self.node.metrics
        if metrics is None:
            return web.Response(status=503, text="metrics are not ready: the node is starting\n")
        body = await metrics.render()
        # aiohttp refuses a content_type carrying parameters: set the header itself.
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})
