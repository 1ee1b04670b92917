"""REST v1 (``/zstack/v1``): routes generated from every declared API, and job polling.

POST = create (``{"params": {...}}``), PUT = action (``{"<actionName>": {...}}``; several
APIs may share a path), GET/DELETE = parameters in the query string. Path variables fill
the same-named fields. APIs whose paths differ only in variable names share one route
(ZStack has ``/images/{uuid}/actions`` and ``/images/{imageUuid}/actions``): each API reads
the variables by position under its own names. Sync APIs answer 200 with the reply body;
async ones 202 with the job's location; ``GET /zstack/v1/api-jobs/{uuid}`` answers 202 {}
until the job ends.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from zstackpy.api.http.decode import (
    build_message,
    fields_by_wire_name,
    fields_from_query,
    invalid,
    job_uuid_from_header,
    merge_tags,
    read_json_object,
    session_from_header,
    timeout_from_header,
)
from zstackpy.api.http.errors import error_response
from zstackpy.api.http.frontend import ApiFrontend
from zstackpy.api.http.job_trace import JobTraceRoute
from zstackpy.api.jobs import JobState, JobView, reply_body
from zstackpy.api.jobs.service import reply_error
from zstackpy.api.messages import APIMessage, APIQueryMessage, QueryCondition
from zstackpy.api.query.syntax import parse_rest_condition, parse_sort
from zstackpy.core.errors import ErrorInfo, SysErr, ZError

V1 = "/zstack/v1"
JOBS_PATH = "/api-jobs"
_VAR = re.compile(r"\{(\w+)\}")
# Query-string keys of a REST query that are not message fields as such.
_QUERY_KEYS = frozenset({"q", "sort", "conditions", "sortBy", "sortDirection"})


@dataclass
class Route:
    """One (verb, path); PUT routes may carry several APIs told apart by their body key."""

    method: str
    path: str  # relative to /zstack/v1
    apis: list[type[APIMessage]] = field(default_factory=list)
    by_uuid: bool = False  # GET /<collection>/{uuid}: a query with uuid=<uuid>


def path_vars(path: str) -> list[str]:
    return _VAR.findall(path)


def path_shape(path: str) -> str:
    """The path with its variables unnamed: two APIs with one shape share a route."""
    return _VAR.sub("{}", path)


def positional_url(path: str) -> str:
    """The aiohttp pattern of a route: variables named by position (``{_p0}``)."""
    counter = iter(range(len(path_vars(path))))
    return _VAR.sub(lambda _: f"{{_p{next(counter)}}}", path)


def _match_values(request: web.Request) -> list[str]:
    return [request.match_info[f"_p{i}"] for i in range(len(request.match_info))]


def body_key(cls: type[APIMessage]) -> str:
    spec = cls.api
    assert spec is not None
    return spec.body_key or ("params" if spec.method == "POST" else spec.action_name)


def _route_order(route: Route) -> tuple[tuple[bool, str], ...]:
    # Literal segments before variables at each depth: /accounts/login must win over
    # /accounts/{uuid}, whatever order the APIs were declared in.
    return tuple((s.startswith("{"), s) for s in route.path.split("/"))


def route_table(apis: Iterable[type[APIMessage]]) -> list[Route]:
    """Routes for ``apis``. Raises ValueError for two APIs on one non-PUT (verb, path) or
    two PUT APIs with one body key: a client could not tell them apart."""
    table: dict[tuple[str, str], Route] = {}
    for cls in apis:
        spec = cls.api
        if spec is None:
            continue
        key = (spec.method, path_shape(spec.path))
        route = table.setdefault(key, Route(spec.method, spec.path))
        for other in route.apis:
            if spec.method != "PUT" or body_key(other) == body_key(cls):
                raise ValueError(
                    f"{spec.method} {spec.path} is declared by both {other.__qualname__} "
                    f"and {cls.__qualname__}"
                )
        route.apis.append(cls)
    for (method, path), route in list(table.items()):
        query = route.apis[0]
        if method == "GET" and issubclass(query, APIQueryMessage) and not path_vars(path):
            key = ("GET", f"{path}/{{}}")
            if key not in table:
                table[key] = Route("GET", f"{route.path}/{{uuid}}", [query], by_uuid=True)
    return sorted(table.values(), key=_route_order)


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class RestFrontend:
    def __init__(self, frontend: ApiFrontend) -> None:
        self.frontend = frontend

    def mount(self, app: web.Application, apis: Iterable[type[APIMessage]]) -> list[Route]:
        app.router.add_get(f"{V1}{JOBS_PATH}/{{uuid}}", self.get_job)
        app.router.add_get(f"{V1}{JOBS_PATH}/{{uuid}}/trace", JobTraceRoute(self.frontend).handle)
        routes = route_table(apis)
        resources: dict[str, web.Resource] = {}
        for route in routes:
            url = V1 + positional_url(route.path)
            resource = resources.get(url) or app.router.add_resource(url)
            resources[url] = resource
            resource.add_route(route.method, self._handler(route))
        return routes

    def _handler(self, route: Route) -> Handler:
        async def handle(request: web.Request) -> web.StreamResponse:
            return await self.dispatch(request, route)

        return handle

    # ----- API calls ---------------------------------------------------------------------

    async def dispatch(self, request: web.Request, route: Route) -> web.Response:
        try:
            msg = await self._message(request, route)
            msg.session_uuid = session_from_header(request)
            timeout_s = self.frontend.timeout_s(msg, timeout_from_header(request))
            spec = msg.api
            if spec is not None and spec.is_async:
                job, _ = await self.frontend.submit(msg, job_uuid_from_header(request), timeout_s)
                return web.json_response(accepted_body(request, job), status=202)
            reply = await self.frontend.call(msg, timeout_s)
        except ZError as exc:
            return error_response(exc.info())
        if not reply.success:
            return error_response(reply_error(reply))
        return web.json_response(reply_body(reply))

    async def _message(self, request: web.Request, route: Route) -> APIMessage:
        if route.method in ("POST", "PUT"):
            body = await read_json_object(request)
            cls, key = self._pick(route, body)
            params = body.get(key)
            if params is None:
                params = {}
            if not isinstance(params, dict):
                raise invalid(f"{key!r} must be a JSON object", field=key)
            data = merge_tags(params, body)
        else:
            cls = route.apis[0]
            skip = _QUERY_KEYS if issubclass(cls, APIQueryMessage) else frozenset()
            data = fields_from_query(cls, request.query, skip)
        if issubclass(cls, APIQueryMessage):
            data.update(_query_params(request))
        fields = fields_by_wire_name(cls)
        conditions: list[QueryCondition] = data.get("conditions", [])
        names = path_vars(route.path if route.by_uuid else _declared_path(cls))
        for name, value in zip(names, _match_values(request), strict=True):
            if name in fields:
                data[name] = value
            elif issubclass(cls, APIQueryMessage):
                # /zones/{uuid} and the like: a path variable of a query is a condition.
                conditions.append(QueryCondition(name=name, op="=", value=value))
        if conditions:
            data["conditions"] = conditions
        return build_message(cls, data)

    @staticmethod
    def _pick(route: Route, body: dict[str, Any]) -> tuple[type[APIMessage], str]:
        if route.method == "POST":
            return route.apis[0], body_key(route.apis[0])
        for cls in route.apis:
            if body_key(cls) in body:
                return cls, body_key(cls)
        valid = [body_key(cls) for cls in route.apis]
        raise invalid(
            f"the body doesn't contain action mapping to the URL[{V1}{route.path}]; "
            f"valid action keys: {', '.join(valid)}",
            validKeys=valid,
        )

    # ----- jobs ------------------------------------------------------------------------

    async def get_job(self, request: web.Request) -> web.Response:
        try:
            job = await self.frontend.job(request.match_info["uuid"], "job")
        except ZError as exc:
            return error_response(exc.info())
        return job_response(job)


def _declared_path(cls: type[APIMessage]) -> str:
    assert cls.api is not None
    return cls.api.path


def _query_params(request: web.Request) -> dict[str, Any]:
    """``q`` (repeatable) and ``sort`` of a REST query; the rest are plain fields."""
    data: dict[str, Any] = {
        "conditions": [parse_rest_condition(text) for text in request.query.getall("q", [])]
    }
    sort = request.query.get("sort")
    if sort is not None:
        data["sortBy"], data["sortDirection"] = parse_sort(sort)
    return data


def job_location(request: web.Request, job_uuid: str) -> str:
    # The host the client reached us by: it can come back the same way.
    return f"{request.scheme}://{request.host}{V1}{JOBS_PATH}/{job_uuid}"


def accepted_body(request: web.Request, job: JobView) -> dict[str, Any]:
    body: dict[str, Any] = {
        "location": job_location(request, job.uuid),
        "apiTimeout": job.timeout_ms,
    }
    if job.resource_uuid is not None:
        body["resourceUuid"] = job.resource_uuid
    return body


def job_response(job: JobView) -> web.Response:
    if job.state is JobState.PROCESSING:
        return web.json_response({}, status=202)
    if job.state is JobState.DONE:
        # The stored JSON text as it is: no parse and encode again per fetch.
        return web.Response(text=job.body_json or "{}", content_type="application/json")
    info = job.error or ErrorInfo(code=SysErr.INTERNAL, description="the job failed")
    return error_response(info)
