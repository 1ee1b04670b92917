"""Job completions pushed by the node: a reader of ``GET /zstack/v1/events`` that tells the
driver each ``jobCompleted`` event's job uuid.

Polling finds a job's end only when the job's turn comes; with thousands of jobs open and
the polls rate-limited (so that they do not load the node more than the work), the turn
comes seconds after the end, and the client, not the node, sets the pace. With the stream,
one GET per job fetches its answer as soon as it ended. The polling stays, slow, as the
safety net for an event the stream did not deliver; when a stream ends or fails, events may
have been missed from then on, and ``on_lost`` tells the driver to poll at its full pace.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from contextlib import suppress

from simulator.stress.rest import ApiClient

JOB_COMPLETED = "jobCompleted"

# (seconds between two polls of one job, polls/s at most in all): polling alone, and the
# safety net beside the stream. The net's polls find nothing while the stream works, so
# they are kept to a trickle: at the polling pace a 10,000-VM burst got two polls per VM,
# a tenth of the node's work.
POLL_PACE = (0.1, 100.0)
SAFETY_NET_PACE = (30.0, 10.0)


def pace(wait: str, interval: float | None, rate: float | None) -> tuple[float, float]:
    """The driver's polling for ``--wait`` events|poll, unless given on the command line."""
    default_interval, default_rate = SAFETY_NET_PACE if wait == "events" else POLL_PACE
    return interval or default_interval, rate or default_rate


class JobEvents:
    """One stream per client; ``on_done(job_uuid)`` and ``on_lost()`` (a stream ended before
    ``close``) run on the event loop."""

    def __init__(
        self, on_done: Callable[[str], None], on_lost: Callable[[], None] | None = None
    ) -> None:
        self._on_done = on_done
        self._on_lost = on_lost
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
                return
        # Not cancelled by close: the rest of the jobs' ends are the polls' to find.
        if self._on_lost is not None:
            self._on_lost()
