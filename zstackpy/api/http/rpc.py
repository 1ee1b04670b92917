"""The legacy RPC front-end (``POST /zstack/api``), spoken by zstack-cli and the MCP server.

The body is ``{"<java class>": {...fields..., "session": {"uuid": ...}}}``; the answer is
always HTTP 200 ``{"uuid", "state", "createdDate", "finishedDate", "result"}`` where
``result`` is a JSON *string* ``{"<result java class>": {...body..., "success": ...}}``.
Async APIs answer ``state: Processing`` and are polled at ``/zstack/api/result/{uuid}``
(the same jobs as REST's).

Unlike ZStack, a body we cannot use (bad JSON, unknown class, invalid fields) also gets
that JSON shape, ``state: Done`` and a failed result, not a plain-text 200: clients parse
one shape only.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from aiohttp import web

from zstackpy.api.http.decode import (
    build_message,
    invalid,
    job_uuid_from_header,
    read_json_object,
)
from zstackpy.api.http.errors import error_response
from zstackpy.api.http.frontend import ApiFrontend
from zstackpy.api.jobs import JobState, JobView, reply_body
from zstackpy.api.jobs.service import reply_error
from zstackpy.api.messages import (
    APIMessage,
    api_by_java_class,
    api_by_name,
    format_zstack_date,
)
from zstackpy.core.clock import utcnow
from zstackpy.core.errors import ErrorInfo, SysErr, ZError
from zstackpy.core.ids import new_uuid

RPC_PATHS = ("/zstack/api", "/zstack/api/")
RESULT_PATH = "/zstack/api/result/{uuid}"
# The result key when the request names no API we know.
GENERIC_REPLY = "org.zstack.header.message.APIReply"


def result_key(cls: type[APIMessage]) -> str:
    spec = cls.api
    assert spec is not None
    if spec.result_java_class:
        return spec.result_java_class
    base = spec.java_class.removesuffix("Msg")
    return base + ("Event" if spec.is_async else "Reply")


def result_text(key: str, body: dict[str, Any] | None, error: ErrorInfo | None) -> str:
    if error is not None:
        inner: dict[str, Any] = {
            "success": False,
            "error": error.model_dump(mode="json", exclude_none=True),
        }
    else:
        inner = {**(body or {}), "success": True}
    return json.dumps({key: inner})


def _done(
    uuid: str,
    created: datetime,
    key: str,
    body: dict[str, Any] | None = None,
    error: ErrorInfo | None = None,
    finished: datetime | None = None,
) -> web.Response:
    return web.json_response(
        {
            "uuid": uuid,
            "state": "Done",
            "createdDate": format_zstack_date(created),
            "finishedDate": format_zstack_date(finished or utcnow()),
            "result": result_text(key, body, error),
        }
    )


def _job_answer(job: JobView, key: str) -> web.Response:
    if job.state is JobState.PROCESSING:
        return web.json_response(
            {
                "uuid": job.uuid,
                "state": "Processing",
                "createdDate": format_zstack_date(job.create_date),
            }
        )
    return _done(job.uuid, job.create_date, key, job.body, job.error, job.finished_date)


class RpcFrontend:
    def __init__(self, frontend: ApiFrontend) -> None:
        self.frontend = frontend

    def mount(self, app: web.Application) -> None:
        for path in RPC_PATHS:
            app.router.add_post(path, self.call)
            app.router.add_put(path, self.call)
        app.router.add_get(RESULT_PATH, self.result)

    async def call(self, request: web.Request) -> web.Response:
        created = utcnow()
        key = GENERIC_REPLY
        try:
            cls, fields = self._decode(await read_json_object(request))
            key = result_key(cls)
            session = fields.pop("session", None)
            timeout_ms = fields.pop("timeout", None) if "timeout" not in cls.model_fields else None
            msg = build_message(cls, fields)
            msg.session_uuid = _session_uuid(session)
            timeout_s = self.frontend.timeout_s(msg, _timeout_s(timeout_ms))
            spec = msg.api
            if spec is not None and spec.is_async:
                job, _ = await self.frontend.submit(msg, job_uuid_from_header(request), timeout_s)
                return _job_answer(job, key)
            reply = await self.frontend.call(msg, timeout_s)
        except ZError as exc:
            return _done(new_uuid(), created, key, error=exc.info())
        if not reply.success:
            return _done(new_uuid(), created, key, error=reply_error(reply))
        return _done(new_uuid(), created, key, body=reply_body(reply))

    @staticmethod
    def _decode(body: dict[str, Any]) -> tuple[type[APIMessage], dict[str, Any]]:
        if len(body) != 1:
            raise invalid(
                "the body must have exactly one key, the API message's Java class name",
                keys=sorted(body),
            )
        ((java_class, fields),) = body.items()
        cls = api_by_java_class(java_class)
        if cls is None:
            raise ZError(
                SysErr.UNKNOWN_MESSAGE,
                f"no API message {java_class}",
                javaClass=java_class,
            )
        if fields is None:
            fields = {}
        if not isinstance(fields, dict):
            raise invalid(f"{java_class} must map to a JSON object", javaClass=java_class)
        return cls, dict(fields)

    async def result(self, request: web.Request) -> web.Response:
        try:
            job = await self.frontend.job(request.match_info["uuid"], "API result")
        except ZError as exc:
            return error_response(exc.info())
        cls = api_by_name(job.api_name)
        return _job_answer(job, result_key(cls) if cls is not None else GENERIC_REPLY)


def _session_uuid(session: Any) -> str | None:
    if session is None:
        return None
    if isinstance(session, dict) and isinstance(session.get("uuid"), str):
        uuid: str = session["uuid"]
        return uuid
    raise invalid('session must be {"uuid": "<session uuid>"}', field="session")


def _timeout_s(timeout_ms: Any) -> float | None:
    """The message's ``timeout`` field, in milliseconds as ZStack's RPC messages carry it."""
    if timeout_ms is None:
        return None
    if isinstance(timeout_ms, bool) or not isinstance(timeout_ms, int | float) or timeout_ms <= 0:
        raise invalid("timeout must be a positive number of milliseconds", field="timeout")
    return float(timeout_ms) / 1000
