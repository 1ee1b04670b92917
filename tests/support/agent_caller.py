"""A test's side of the agent protocol: async commands sent with a callback URL of the
test's own, each result awaited by its task id (what the node's agent client does)."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import aiohttp
from aiohttp import web


class AgentCaller:
    def __init__(self, token: str) -> None:
        self.token = token
        self._results: dict[str, asyncio.Future[dict[str, Any]]] = {}

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/cb", self._callback)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.callback_url = f"http://127.0.0.1:{self._runner.addresses[0][1]}/cb"
        self.http = aiohttp.ClientSession()

    async def close(self) -> None:
        await self.http.close()
        await self._runner.cleanup()

    async def _callback(self, request: web.Request) -> web.Response:
        waiting = self._results.get(request.headers["taskuuid"])
        if waiting is not None and not waiting.done():
            waiting.set_result(await request.json())
        return web.json_response({})

    async def call(
        self, port: int, path: str, body: dict[str, Any], timeout: float = 60
    ) -> dict[str, Any]:
        """POST the command to the agent on 127.0.0.1:``port``; its result."""
        task = uuid.uuid4().hex
        self._results[task] = asyncio.get_running_loop().create_future()
        headers = {
            "Authorization": f"Bearer {self.token}",
            "taskuuid": task,
            "callbackurl": self.callback_url,
        }
        try:
            url = f"http://127.0.0.1:{port}{path}"
            async with self.http.post(url, json=body, headers=headers) as answer:
                assert answer.status == 200, await answer.text()
            async with asyncio.timeout(timeout):
                return await self._results[task]
        finally:
            del self._results[task]
