"""``NodeStub``: the management node's side of the agent protocol, for tests, on loopback
(callbacks and reports in, commands out)."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

CALLBACK_PATH = "/zstack/asyncrest/callback"
SEND_COMMAND_PATH = "/zstack/asyncrest/sendcommand"


@dataclass
class Report:
    commandpath: str | None
    authorization: str | None
    body: dict[str, Any]


@dataclass
class NodeStub:
    """A tiny node: records callbacks by task id and reports in arrival order.

    ``callback_status`` lists statuses to answer the next callbacks with (then 200).
    """

    http: aiohttp.ClientSession | None = None
    callbacks: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    reports: list[Report] = field(default_factory=list)
    callback_status: list[int] = field(default_factory=list)
    callback_attempts: int = 0
    _runner: web.AppRunner | None = None
    _port: int = 0
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post(CALLBACK_PATH, self._callback)
        app.router.add_post(SEND_COMMAND_PATH, self._report)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self._port = int(self._runner.addresses[0][1])
        self.http = aiohttp.ClientSession()

    async def stop(self) -> None:
        if self.http is not None:
            await self.http.close()
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._port}"

    @property
    def callback_url(self) -> str:
        return self.base_url + CALLBACK_PATH

    @property
    def send_command_url(self) -> str:
        return self.base_url + SEND_COMMAND_PATH

    async def _callback(self, request: web.Request) -> web.Response:
        self.callback_attempts += 1
        if self.callback_status:
            return web.Response(status=self.callback_status.pop(0))
        task_uuid = request.headers["taskuuid"]
        assert request.content_type == "application/json"
        self.callbacks.setdefault(task_uuid, []).append(await request.json())
        self._notify()
        return web.Response()

    async def _report(self, request: web.Request) -> web.Response:
        self.reports.append(
            Report(
                request.headers.get("commandpath"),
                request.headers.get("Authorization"),
                await request.json(),
            )
        )
        self._notify()
        return web.Response()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def wait_callbacks(
        self, task_uuid: str, count: int = 1, timeout: float = 10
    ) -> list[dict[str, Any]]:
        """The first ``count`` results for ``task_uuid``, waiting for them to arrive."""
        async with asyncio.timeout(timeout):
            while len(self.callbacks.get(task_uuid, [])) < count:
                await self._changed.wait()
        return self.callbacks[task_uuid][:count]

    async def wait_result(self, task_uuid: str, timeout: float = 10) -> dict[str, Any]:
        return (await self.wait_callbacks(task_uuid, 1, timeout))[0]

    async def wait_reports(self, count: int = 1, timeout: float = 10) -> list[Report]:
        async with asyncio.timeout(timeout):
            while len(self.reports) < count:
                await self._changed.wait()
        return self.reports[:count]

    async def send(
        self,
        url: str,
        body: dict[str, Any] | None = None,
        *,
        token: str | None,
        task_uuid: str | None = "",
        callback: bool = True,
    ) -> tuple[int, Any]:
        """POST a command as the node does; ``task_uuid=""`` makes a fresh id, None sends
        none. Returns (status, JSON body or None)."""
        assert self.http is not None
        headers: dict[str, str] = {}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        if task_uuid is not None:
            headers["taskuuid"] = task_uuid or uuid.uuid4().hex
        if callback:
            headers["callbackurl"] = self.callback_url
        async with self.http.post(url, json=body or {}, headers=headers) as resp:
            answer = await resp.json(content_type=None) if await resp.read() else None
            return resp.status, answer

    async def call(
        self, url: str, body: dict[str, Any] | None = None, *, token: str, timeout: float = 10
    ) -> dict[str, Any]:
        """An async command end to end: send, expect 200 ``{}``, return the callback."""
        task_uuid = uuid.uuid4().hex
        status, answer = await self.send(url, body, token=token, task_uuid=task_uuid)
        assert (status, answer) == (200, {}), (status, answer)
        return await self.wait_result(task_uuid, timeout)
