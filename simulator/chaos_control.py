"""The chaos harness's control routes, beside ``simulator.control``'s:

- ``GET /simulator/ledger``: ``tasks``, ``duplicates [{taskUuid, path}]`` (task ids that
  ran twice), ``vmEffects {vm: {path: runs}}`` (``simulator.ledger``).
- ``PUT /simulator/hosts/{address}/crash?port=`` ``{path, downFor=1.0, times=1}``: the
  next runs of ``path`` act, then the machine dies before calling back (``simulator.crash``).
- ``POST /simulator/hosts/{address}/restart?port=`` ``{downFor=0.0}``: its agent restarts.
"""

from __future__ import annotations

from aiohttp import web

from simulator.control import _body, _guard, _typed, _where
from simulator.world import World


class ChaosControlApi:
    def __init__(self, world: World) -> None:
        self.world = world

    def add_routes(self, router: web.UrlDispatcher) -> None:
        router.add_route("GET", "/simulator/ledger", _guard(self.ledger))
        router.add_route("PUT", "/simulator/hosts/{address}/crash", _guard(self.arm_crash))
        router.add_route("POST", "/simulator/hosts/{address}/restart", _guard(self.restart))

    async def ledger(self, request: web.Request) -> web.Response:
        return web.json_response(self.world.ledger.view())

    async def arm_crash(self, request: web.Request) -> web.Response:
        body = await _body(request)
        address, port = _where(request)
        self.world.crashes.arm(
            address,
            port,
            _typed(body, "path", str),
            down_for=float(_typed(body, "downFor", (int, float), 1.0)),
            times=_typed(body, "times", int, 1),
        )
        return web.json_response({"success": True, "error": None})

    async def restart(self, request: web.Request) -> web.Response:
        body = await _body(request) if request.can_read_body else {}
        address, port = _where(request)
        down_for = float(_typed(body, "downFor", (int, float), 0.0))
        await self.world.crashes.restart(address, port, down_for=down_for)
        return web.json_response({"success": True, "error": None})
