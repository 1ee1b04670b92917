"""A small REST v1 client for tests: what a ZStack SDK does, over aiohttp on 127.0.0.1."""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass, field
from typing import Any

import aiohttp


def sha512(plain: str) -> str:
    return hashlib.sha512(plain.encode()).hexdigest()


@dataclass
class Answer:
    status: int
    body: Any

    @property
    def error(self) -> dict[str, Any]:
        assert isinstance(self.body, dict)
        assert "error" in self.body, self.body
        error: dict[str, Any] = self.body["error"]
        return error


@dataclass
class ApiClient:
    base: str  # http://127.0.0.1:<port>
    http: aiohttp.ClientSession
    session_uuid: str | None = None
    poll_interval: float = 0.02
    headers: dict[str, str] = field(default_factory=dict)

    def _headers(self) -> dict[str, str]:
        headers = dict(self.headers)
        if self.session_uuid:
            headers["Authorization"] = f"OAuth {self.session_uuid}"
        return headers

    async def request(
        self, method: str, path: str, *, json: Any = None, params: Any = None
    ) -> Answer:
        async with self.http.request(
            method,
            f"{self.base}/zstack/v1{path}",
            json=json,
            params=params,
            headers=self._headers(),
        ) as resp:
            body = await resp.json(content_type=None) if resp.content_length != 0 else None
            return Answer(resp.status, body)

    async def finish(self, answer: Answer, timeout: float = 30) -> Answer:
        """Follow a 202 job location until the job ends."""
        if answer.status != 202:
            return answer
        location = answer.body["location"]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            async with self.http.get(location, headers=self._headers()) as resp:
                body = await resp.json(content_type=None)
                if resp.status != 202:
                    return Answer(resp.status, body)
            if loop.time() > deadline:
                raise AssertionError(f"job {location} still running after {timeout}s")
            await asyncio.sleep(self.poll_interval)

    async def login(self, account: str, plain_password: str) -> str:
        answer = await self.request(
            "PUT",
            "/accounts/login",
            json={"logInByAccount": {"accountName": account, "password": sha512(plain_password)}},
        )
        assert answer.status == 200, answer.body
        self.session_uuid = answer.body["inventory"]["uuid"]
        return str(self.session_uuid)

    async def create(self, path: str, params: dict[str, Any], **top: Any) -> Answer:
        return await self.finish(await self.request("POST", path, json={"params": params, **top}))

    async def action(self, path: str, action: str, params: dict[str, Any]) -> Answer:
        return await self.finish(await self.request("PUT", path, json={action: params}))

    async def delete(self, path: str, **params: str) -> Answer:
        return await self.finish(await self.request("DELETE", path, params=params or None))

    async def query(self, path: str, *conditions: str, **params: str) -> Answer:
        query: list[tuple[str, str]] = [("q", c) for c in conditions]
        query.extend(params.items())
        return await self.request("GET", path, params=query)

    async def inventory(self, path: str, params: dict[str, Any], **top: Any) -> dict[str, Any]:
        answer = await self.create(path, params, **top)
        assert answer.status == 200, answer.body
        inventory: dict[str, Any] = answer.body["inventory"]
        return inventory
