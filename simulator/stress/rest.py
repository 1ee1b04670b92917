"""A REST v1 client for drivers and benchmarks: requests, and async jobs followed to their
end with polling bounded in rate, so a burst's polls do not load the node more than a
small one's.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import sys
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp


class ApiError(Exception):
    """A call the driver cannot go on without failed (building the data center, login)."""

    def __init__(self, what: str, answer: Answer) -> None:
        super().__init__(f"{what}: HTTP {answer.status}: {answer.body}")
        self.answer = answer


@dataclass
class Answer:
    status: int
    body: Any

    @property
    def error_code(self) -> str | None:
        """The API's error code of a failed answer; ``HTTP.<status>`` if it has none."""
        if self.status < 400:
            return None
        if isinstance(self.body, dict) and isinstance(self.body.get("error"), dict):
            return str(self.body["error"].get("code") or f"HTTP.{self.status}")
        return f"HTTP.{self.status}"


@dataclass
class ApiClient:
    """One logged-in REST client of one node (``base``: ``http://host:port``)."""

    base: str
    http: aiohttp.ClientSession
    session_uuid: str | None = None

    async def login(self, account: str, plain_password: str) -> str:
        digest = hashlib.sha512(plain_password.encode()).hexdigest()
        body = {"logInByAccount": {"accountName": account, "password": digest}}
        answer = await self.request("PUT", "/accounts/login", body)
        if answer.status != 200:
            raise ApiError(f"login as {account}", answer)
        self.session_uuid = str(answer.body["inventory"]["uuid"])
        return self.session_uuid

    async def request(self, method: str, path: str, body: Any = None) -> Answer:
        """One request to ``/zstack/v1<path>``; a body that is not JSON is kept as text."""
        headers = {"Authorization": f"OAuth {self.session_uuid}"} if self.session_uuid else {}
        url = f"{self.base}/zstack/v1{path}"
        async with self.http.request(method, url, json=body, headers=headers) as resp:
            raw = await resp.text()
        try:
            return Answer(resp.status, json.loads(raw) if raw else None)
        except ValueError:
            return Answer(resp.status, raw)

    async def job(
        self, method: str, path: str, body: Any = None, *, poll_s: float = 0.05
    ) -> Answer:
        """One request followed to its job's end by polling every ``poll_s`` (for the odd
        call; many jobs at once go through a ``Driver``)."""
        answer = await self.request(method, path, body)
        if answer.status != 202 or not isinstance(answer.body, dict):
            return answer
        job_path = answer.body["location"].split("/zstack/v1", 1)[1]
        while True:
            await asyncio.sleep(poll_s)
            answer = await self.request("GET", job_path)
            if answer.status != 202:
                return answer


@dataclass
class _OpenJob:
    client: ApiClient
    path: str  # /api-jobs/<uuid>
    answer: asyncio.Future[Answer]
    due: float  # loop time of its next poll


@dataclass
class Driver:
    """Async jobs over REST, at most ``in_flight`` HTTP requests at a time. Open jobs are
    polled round robin: each at most every ``poll_interval`` s, all of them together at
    most ``poll_rate`` times a second. A job told done by ``job_completed`` (the node's
    event stream: job_events.py) is fetched at once, out of turn."""

    clients: list[ApiClient]
    in_flight: int
    poll_interval: float = 0.1
    poll_rate: float = 100.0
    polls: int = 0
    _gate: asyncio.Semaphore = field(init=False)
    _open: deque[_OpenJob] = field(default_factory=deque, init=False)
    _poller: asyncio.Task[None] | None = field(default=None, init=False)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set, init=False)
    _by_uuid: dict[str, _OpenJob] = field(default_factory=dict, init=False)
    # Told done before its POST's answer came back: fetched as soon as it is followed.
    _done_early: set[str] = field(default_factory=set, init=False)

    def __post_init__(self) -> None:
        self._gate = asyncio.Semaphore(self.in_flight)

    async def request(self, client: ApiClient, method: str, path: str, body: Any = None) -> Answer:
        async with self._gate:
            return await client.request(method, path, body)

    async def job(self, client: ApiClient, method: str, path: str, body: Any = None) -> Answer:
        """The job's final answer (200 with the result, or the error)."""
        return await self.follow(client, await self.request(client, method, path, body))

    async def follow(self, client: ApiClient, answer: Answer) -> Answer:
        """Follow a ``202`` answer's job location to the job's end; others as they are."""
        if answer.status != 202:
            return answer
        loop = asyncio.get_running_loop()
        job_path = answer.body["location"].split("/zstack/v1", 1)[1]
        job = _OpenJob(client, job_path, loop.create_future(), loop.time() + self.poll_interval)
        uuid = job_path.rstrip("/").rsplit("/", 1)[-1]
        self._by_uuid[uuid] = job
        self._reopen(job)
        if uuid in self._done_early:
            self._done_early.discard(uuid)
            self.job_completed(uuid)
        try:
            return await job.answer
        finally:
            self._by_uuid.pop(uuid, None)

    def poll_now(self, interval: float, rate: float) -> None:
        """Poll every open job at once and from now on at this pace (the event stream that
        made slow polling enough is gone)."""
        self.poll_interval, self.poll_rate = interval, rate
        now = asyncio.get_running_loop().time()
        for job in self._open:
            job.due = min(job.due, now)
        if self._poller is not None:
            self._poller.cancel()  # it may be asleep until a due time that moved
            self._poller = None
        if self._open:
            self._poller = asyncio.create_task(self._poll_loop())

    def job_completed(self, uuid: str) -> None:
        """The job ended (its event said so): fetch its answer now."""
        job = self._by_uuid.get(uuid)
        if job is None:
            self._done_early.add(uuid)
            return
        task = asyncio.create_task(self._poll(job))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        """Stop polling (jobs still open are left to the node)."""
        for task in [*self._tasks, *([self._poller] if self._poller else [])]:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._poller is not None:
            await asyncio.gather(self._poller, return_exceptions=True)

    async def many(
        self, label: str, n: int, one: Callable[[ApiClient, int], Awaitable[Answer]]
    ) -> tuple[float, list[Answer]]:
        """Run ``one`` n times at once, clients in turn; wall seconds and the answers, a
        progress line on stderr every 5 s."""
        done = 0

        async def counted(i: int) -> Answer:
            nonlocal done
            answer = await one(self.clients[i % len(self.clients)], i)
            done += 1
            return answer

        async def progress() -> None:
            while True:
                await asyncio.sleep(5)
                print(f"  {label}: {done}/{n} in {time.monotonic() - t0:.0f} s", file=sys.stderr)

        t0 = time.monotonic()
        reporter = asyncio.create_task(progress())
        try:
            answers = await asyncio.gather(*(counted(i) for i in range(n)))
        finally:
            reporter.cancel()
        return time.monotonic() - t0, answers

    def _reopen(self, job: _OpenJob) -> None:
        self._open.append(job)
        if self._poller is None or self._poller.done():
            self._poller = asyncio.create_task(self._poll_loop())

    async def _poll_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while self._open:
            job = self._open[0]  # the earliest due: jobs are queued in due order
            if job.answer.done():
                self._open.popleft()
                continue  # fetched out of turn
            if (wait := job.due - loop.time()) > 0:
                await asyncio.sleep(wait)  # cancelled here (poll_now), the job stays queued
                continue  # the head may have been fetched meanwhile
            self._open.popleft()
            task = asyncio.create_task(self._poll(job))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            await asyncio.sleep(1 / self.poll_rate)

    async def _poll(self, job: _OpenJob) -> None:
        if job.answer.done():
            return
        self.polls += 1
        try:
            answer = await self.request(job.client, "GET", job.path)
        except Exception as exc:
            if not job.answer.done():
                job.answer.set_exception(exc)
            return
        if job.answer.done():
            return  # the other of a turn's poll and an event's fetch answered first
        if answer.status == 202:
            job.due = asyncio.get_running_loop().time() + self.poll_interval
            self._reopen(job)
        else:
            job.answer.set_result(answer)
