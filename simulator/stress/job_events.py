"""Job completions pushed by the node: a reader of ``GET /zstack/v1/events`` that tells the
driver each ``jobCompleted`` event's job uuid.

Polling finds a job's end only when the job's turn comes; with thousands of jobs open and
the polls rate-limited (so that they do not load the node more than the work), the turn
comes seconds after the end, and the client, not the node, sets the pace. With the stream,
one GET per job fetches its answer as soon as it ended (the polling stays, slower, as the
safety net for an event the stream did not deliver).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from contextlib import suppress

from simulator.stress.rest import ApiClient

JOB_COMPLETED = "jobCompleted"


class JobEvents:
    """One stream per client; ``on_done(job_uuid)`` runs on the event loop."""

    def __init__(self, on_done: Callable[[str], None]) -> None:
        self._on_done = on_done
        self._tasks: list[asyncio.Task[None]] = []
        self.events = 0  # jobCompleted events read, for the summary

    async def open(self, client: ApiClient) -> None:
        """Start reading ``client``'s stream; returns once the node accepted it, so that
        every job submitted afterwards has its end on the stream."""
        opened: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._tasks.append(asyncio.create_task(self._read(client, opened)))
        await opened

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()

    async def _read(self, client: ApiClient, opened: asyncio.Future[None]) -> None:
        headers = {"Authorization": f"OAuth {client.session_uuid}"}
        url = f"{client.base}/zstack/v1/events"
        try:
            async with client.http.get(url, headers=headers, timeout=None) as resp:
                if resp.status != 200:
                    raise RuntimeError(f"event stream of {client.base}: HTTP {resp.status}")
                opened.set_result(None)
                name, data = "", []
                async for raw in resp.content:
                    line = raw.decode().rstrip("\n")
                    if line.startswith("event:"):
                        name = line.partition(":")[2].strip()
                    elif line.startswith("data:"):
                        data.append(line.partition(":")[2].removeprefix(" "))
                    elif not line:
                        if name == JOB_COMPLETED and data:
                            self.events += 1
                            self._on_done(str(json.loads("\n".join(data))["jobUuid"]))
                        name, data = "", []
        except Exception as exc:
            if not opened.done():
                opened.set_exception(exc)
            # A stream that ends leaves the driver's polling to find the rest.
