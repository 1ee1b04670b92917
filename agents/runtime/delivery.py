"""Agent -> node POSTs: command results to a ``callbackurl``, reports to ``sendCommandUrl``.

Results are retried: the node may be restarting or briefly overloaded, and a lost result
turns into a timed-out operation there. A 404 is final: the node no longer waits for that
task (it timed the call out), so resending cannot help.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Sequence
from typing import Any

import aiohttp

from agents.runtime.errors import ReportError
from agents.runtime.protocol import AUTHORIZATION, COMMAND_PATH, TASK_UUID

log = logging.getLogger(__name__)

DEFAULT_BACKOFF_S: tuple[float, ...] = (0.2, 1.0, 3.0)  # waits between the 4 attempts
_ATTEMPT_TIMEOUT = aiohttp.ClientTimeout(total=30)
_JSON = {"Content-Type": "application/json"}


async def post_result(
    http: aiohttp.ClientSession,
    url: str,
    task_uuid: str,
    result: dict[str, Any],
    *,
    backoff: Sequence[float] = DEFAULT_BACKOFF_S,
) -> bool:
    """POST ``result`` to ``url`` with header ``taskuuid``; True when the node took it.

    Connection errors, timeouts and 5xx are retried after each wait in ``backoff``; then
    the result is logged and dropped. Never raises (except CancelledError).
    """
    data = json.dumps(result)
    headers = {**_JSON, TASK_UUID: task_uuid}
    for attempt, wait in enumerate([*backoff, None], start=1):
        try:
            async with http.post(url, data=data, headers=headers, timeout=_ATTEMPT_TIMEOUT) as resp:
                status = resp.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            reason = f"{type(exc).__name__}: {exc}"
        else:
            if status < 300:
                return True
            if status == 404:
                log.info("node no longer waits for task %s (404 from %s)", task_uuid, url)
                return False
            if status < 500:
                log.warning("node refused the result of task %s: HTTP %d", task_uuid, status)
                return False
            reason = f"HTTP {status}"
        if wait is None:
            log.warning(
                "dropping the result of task %s after %d attempts to %s: %s",
                task_uuid,
                attempt,
                url,
                reason,
            )
            return False
        await asyncio.sleep(wait)
    return False  # unreachable: the last iteration always returns


async def post_report(
    http: aiohttp.ClientSession, url: str, token: str, commandpath: str, body: dict[str, Any]
) -> None:
    """One POST of a report; raises ReportError when the node does not take it."""
    headers = {**_JSON, COMMAND_PATH: commandpath, AUTHORIZATION: f"Bearer {token}"}
    try:
        async with http.post(
            url, data=json.dumps(body), headers=headers, timeout=_ATTEMPT_TIMEOUT
        ) as resp:
            status = resp.status
            text = await resp.text()
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise ReportError(f"cannot reach {url}: {type(exc).__name__}: {exc}") from exc
    if status >= 300:
        raise ReportError(f"the node answered {commandpath} with HTTP {status}: {text[:200]}")
