"""The node's HTTP endpoints agents post to: results of commands, and their own reports.

``POST /zstack/asyncrest/callback`` (header ``taskuuid``): 200 when a call waited for the
result, 404 when none does (unknown id, or the call timed out), 400 without ``taskuuid``.
``POST /zstack/asyncrest/sendcommand`` (header ``commandpath``): 400 without it, 404 for a
path nobody handles, 200 otherwise; a handler's ZError answers its status and error body.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from aiohttp import web

from zstackpy.api.http.errors import error_response
from zstackpy.core.agent.client import CALLBACK_PATH, SEND_COMMAND_PATH, AgentClient, AgentReport
from zstackpy.core.errors import ZError

log = logging.getLogger(__name__)


def mount_agent_endpoints(app: web.Application, client: AgentClient) -> None:
    endpoints = _Endpoints(client)
    app.router.add_post(CALLBACK_PATH, endpoints.callback)
    app.router.add_post(SEND_COMMAND_PATH, endpoints.send_command)


class _Endpoints:
    def __init__(self, client: AgentClient) -> None:
        self.client = client

    async def callback(self, request: web.Request) -> web.Response:
        task_uuid = request.headers.get("taskuuid")
        if not task_uuid:
            return web.Response(status=400, text="a callback needs the taskuuid header")
        text = await request.text()
        if "error" in request.headers:
            # The agent's handler crashed: the header carries the reason, the body its trace.
            result: dict[str, Any] = {"success": False, "error": request.headers["error"]}
        else:
            result = _json_object(text) or {
                "success": False,
                "error": f"the agent's result is not a JSON object: {text[:200]!r}",
            }
        if not self.client.deliver(task_uuid, result):
            return web.Response(status=404, text=f"No callback found for taskUuid[{task_uuid}]")
        return web.Response(status=200)

    async def send_command(self, request: web.Request) -> web.Response:
        commandpath = request.headers.get("commandpath")
        if not commandpath:
            return web.Response(status=400, text="a report needs the commandpath header")
        if not self.client.handles_report(commandpath):
            return web.Response(status=404, text=f"no handler for {commandpath}")
        body = _json_object(await request.text())
        if body is None:
            return web.Response(status=400, text="a report's body must be a JSON object")
        auth = request.headers.get("Authorization", "")
        token = auth[len("Bearer ") :] if auth.startswith("Bearer ") else None
        try:
            await self.client.dispatch_report(AgentReport(commandpath, body, token))
        except ZError as exc:
            return error_response(exc.info())
        return web.json_response({"success": True})


def _json_object(text: str) -> dict[str, Any] | None:
    try:
        value = json.loads(text) if text.strip() else {}
    except ValueError:
        return None
    return value if isinstance(value, dict) else None
