"""An HTTP server carrying one ``AgentRuntime`` at its root (the real KVM agent's shape:
``POST http://<host>:7070/host/ping``)."""

from __future__ import annotations

from aiohttp import web

from agents.runtime.runtime import AgentRuntime


class AgentServer:
    """``start`` binds and starts the runtime; ``stop`` stops the runtime (cancelling its
    commands), then the server. ``port`` is the bound port (useful with ``port=0``)."""

    def __init__(self, runtime: AgentRuntime) -> None:
        self.runtime = runtime
        self._runner: web.AppRunner | None = None
        self._port: int | None = None

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("the agent server is not started")
        return self._port

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        await self.runtime.start()
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/{path:.+}", self._handle)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=5.0)
        await runner.setup()
        try:
            site = web.TCPSite(runner, host, port)
            await site.start()
        except BaseException:
            await runner.cleanup()
            await self.runtime.stop()
            raise
        self._runner = runner
        self._port = int(runner.addresses[0][1])

    async def stop(self) -> None:
        await self.runtime.stop()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
            self._port = None

    async def _handle(self, request: web.Request) -> web.Response:
        return await self.runtime.dispatch(request, "/" + request.match_info["path"])
