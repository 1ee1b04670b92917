"""``Simulator``: the ``World`` of simulated machines, served over loopback HTTP.

``POST /agents/{address}/{port}/{path}`` reaches the agent of machine (address, port) as
if it were ``http://{address}:{port}/{path}``; ``/simulator/...`` is the control API
(``simulator.control``). One process, one client session and one server for every
machine: a machine is only state.
"""

from __future__ import annotations

import logging
from types import TracebackType
from typing import Self

import aiohttp
from aiohttp import web

from simulator.chaos_control import ChaosControlApi
from simulator.control import ControlApi
from simulator.world import World

log = logging.getLogger(__name__)

# Connections from all agents to the node together; the node's own client uses 1000 too.
CALLBACK_CONNECTION_LIMIT = 1000


class Simulator(World):
    """Start once with ``start`` (or ``async with``), stop with ``stop``.

    Every control operation is also a method (inherited from ``World``): ``declare``,
    ``deploy``, ``machine``, ``set_fault``, ``clear_faults``, ``set_alive``, ``report``,
    ``declare_nfs``.
    """

    def __init__(self) -> None:
        super().__init__()
        self._runner: web.AppRunner | None = None
        self._port: int | None = None
        self._host = "127.0.0.1"

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("the simulator is not started")
        return self._port

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>``: what the node is configured with."""
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"http://{host}:{self.port}"

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        if self._runner is not None or self.http is not None:
            raise RuntimeError("a simulator starts once")
        connector = aiohttp.TCPConnector(limit=CALLBACK_CONNECTION_LIMIT)
        self.http = aiohttp.ClientSession(connector=connector)
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/agents/{address}/{port}/{path:.+}", self._agent_request)
        ControlApi(self).add_routes(app.router)
        ChaosControlApi(self).add_routes(app.router)
        # A short shutdown: requests parked in a delay fault need not be waited for.
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        try:
            await web.TCPSite(runner, host, port).start()
        except BaseException:
            await runner.cleanup()
            await self.http.close()
            raise
        self._runner = runner
        self._host = host
        self._port = int(runner.addresses[0][1])
        log.debug("simulator listening at %s", self.base_url)

    async def stop(self) -> None:
        """Stop serving, cancel every running command, close the client session."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        await self.stop_agents()
        if self.http is not None:
            await self.http.close()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def _agent_request(self, request: web.Request) -> web.StreamResponse:
        info = request.match_info
        try:
            machine = self.machines.get((info["address"], int(info["port"])))
        except ValueError:
            machine = None
        if machine is None or machine.agent is None or not machine.reachable:
            return _drop(request)
        response = await machine.agent.dispatch(request, "/" + info["path"])
        if not machine.alive:  # it died while a sync command ran: its answer never left
            return _drop(request)
        return response


def _drop(request: web.Request) -> web.StreamResponse:
    """Behave like a machine that is not there: close the connection without an answer
    (the client sees ServerDisconnectedError). Nothing is resolved or dialled."""
    if request.transport is not None:
        request.transport.close()
    return web.Response()
