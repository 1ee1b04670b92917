"""The OpenAPI 3.1 document and the docs page, both generated from the routes.

Message fields come from the pydantic JSON schema (wire names); the reserved ones
(``sessionUuid``, ``auth``), the front-end's own (``apiTimeoutS``) and path variables are
left out of the bodies. PUT actions sharing a path are one operation whose body is any of
their ``{"<actionName>": {...}}`` shapes, so a generic client (or fuzzer) reaches each of
them. Error statuses come from the one mapping in ``errors.py``.
"""

from __future__ import annotations

import html
from typing import Any

from zstackpy import __version__
from zstackpy.api.http.decode import RESERVED_FIELDS
from zstackpy.api.http.errors import DEFAULT_ERROR_STATUS, error_statuses
from zstackpy.api.http.rest import JOBS_PATH, V1, Route, body_key, path_vars
from zstackpy.api.messages import APIMessage, APIQueryMessage

_REF = "#/components/schemas/{model}"
_ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "description"],
            "properties": {
                "code": {"type": "string", "examples": ["SYS.1007"]},
                "description": {"type": "string"},
                "details": {"type": "object"},
                "cause": {"type": "object"},
            },
        }
    },
}
_ACCEPTED_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["location", "apiTimeout"],
    "properties": {
        "location": {"type": "string", "format": "uri"},
        "apiTimeout": {"type": "integer", "description": "milliseconds"},
        "resourceUuid": {"type": "string", "description": "creates: the new resource"},
    },
}
_QUERY_PARAMS: list[tuple[str, dict[str, Any], str]] = [
    ("q", {"type": "array", "items": {"type": "string"}}, "condition, e.g. name=zone1"),
    ("limit", {"type": "integer", "minimum": 0}, "at most this many (default 1000)"),
    ("start", {"type": "integer", "minimum": 0}, "offset"),
    ("count", {"type": "boolean"}, "only the total"),
    ("replyWithCount", {"type": "boolean"}, "inventories and total"),
    ("sort", {"type": "string"}, "+field or -field"),
    ("fields", {"type": "array", "items": {"type": "string"}}, "project these fields"),
]


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": _REF.format(model=name)}


def _fields_schema(
    cls: type[APIMessage], drop: set[str], components: dict[str, Any]
) -> dict[str, Any]:
    schema = cls.model_json_schema(by_alias=True, ref_template=_REF)
    components.update(schema.pop("$defs", {}))
    props: dict[str, Any] = schema.get("properties", {})
    for name in drop:
        props.pop(name, None)
    if "required" in schema:
        schema["required"] = [r for r in schema["required"] if r not in drop]
        if not schema["required"]:
            del schema["required"]
    return schema


# Set by the front-end from X-API-Timeout; a client's value would be overwritten.
_FRONTEND_FIELDS = frozenset({"api_timeout_s"})
_ERROR_REASONS = {
    400: "invalid argument",
    401: "no or expired session, or bad credentials",
    403: "not allowed",
    404: "no such resource",
    409: "conflicts with an existing resource or its state",
    429: "throttled: too many failed logins or a full work queue",
    504: "no answer within the API timeout",
    DEFAULT_ERROR_STATUS: "the API failed (ZStack's status for every other failure)",
}


def _reserved_wire(cls: type[APIMessage]) -> set[str]:
    names = RESERVED_FIELDS | _FRONTEND_FIELDS
    return {(cls.model_fields[n].alias or n) for n in names if n in cls.model_fields}


def _error_responses() -> dict[str, Any]:
    return {
        str(status): {
            "description": _ERROR_REASONS.get(status, "error"),
            "content": _json(_ref("Error")),
        }
        for status in sorted({*error_statuses(), DEFAULT_ERROR_STATUS})
    }


def _body_schema(
    cls: type[APIMessage], drop: set[str], components: dict[str, Any]
) -> dict[str, Any]:
    """``{"<key>": {...fields}, "systemTags": [...], "userTags": [...]}`` of one API."""
    spec = cls.api
    assert spec is not None
    key = body_key(cls)
    components[spec.name + "Params"] = _fields_schema(cls, drop, components)
    tags = {"type": "array", "items": {"type": "string"}}
    return {
        "type": "object",
        "required": [key],
        "properties": {key: _ref(spec.name + "Params"), "systemTags": tags, "userTags": tags},
    }


def _operation(route: Route, cls: type[APIMessage], components: dict[str, Any]) -> dict[str, Any]:
    spec = cls.api
    assert spec is not None
    variables = path_vars(route.path)
    # The API's own names for the path's variables (they may differ from the route's).
    drop = _reserved_wire(cls) | set(variables) | set(path_vars(spec.path))
    params: list[dict[str, Any]] = [
        {"name": v, "in": "path", "required": True, "schema": {"type": "string"}} for v in variables
    ]
    op: dict[str, Any] = {
        "operationId": spec.name + ("ByUuid" if route.by_uuid else ""),
        "summary": spec.summary or (cls.__doc__ or spec.name).strip().splitlines()[0],
        "tags": [spec.path.strip("/").split("/")[0] or "root"],
        "x-zstack-java-class": spec.java_class,
        "x-zstack-async": spec.is_async,
        # What a generic client (zstack-cli) needs to call the API by name: the path with
        # the API's own variable names (a shared route may name them differently) and the
        # body key of a POST/PUT.
        "x-zstack-api": spec.name,
        "x-zstack-path": V1 + spec.path,
    }
    if route.method in ("POST", "PUT"):
        op["x-zstack-body-key"] = body_key(cls)
    if not spec.needs_session:
        op["security"] = []
    if issubclass(cls, APIQueryMessage):
        params += [
            {"name": n, "in": "query", "schema": s, "description": d} for n, s, d in _QUERY_PARAMS
        ]
    elif route.method in ("GET", "DELETE"):
        fields = _fields_schema(cls, drop, components)
        required = set(fields.get("required", []))
        params += [
            {"name": name, "in": "query", "required": name in required, "schema": schema}
            for name, schema in fields.get("properties", {}).items()
        ]
    else:
        op["requestBody"] = {
            "required": True,
            "content": _json(_body_schema(cls, drop, components)),
        }
    if params:
        op["parameters"] = params
    responses: dict[str, Any] = {}
    if spec.is_async:
        responses["202"] = {"description": "poll location", "content": _json(_ref("Accepted"))}
    else:
        responses["200"] = {"description": "the reply body", "content": _json({"type": "object"})}
    op["responses"] = responses | _error_responses()
    return op


def _add_action(shared: dict[str, Any], action: dict[str, Any]) -> None:
    """Fold another PUT action of the same path into ``shared``: the body becomes any of
    the actions' shapes (the server picks the API by the body key it finds)."""
    shared.setdefault("x-zstack-actions", []).append(action)
    content = shared["requestBody"]["content"]["application/json"]
    bodies = content["schema"].get("anyOf") or [content["schema"]]
    content["schema"] = {
        "anyOf": [*bodies, action["requestBody"]["content"]["application/json"]["schema"]]
    }
    for status, response in action["responses"].items():
        shared["responses"].setdefault(status, response)


def openapi_document(routes: list[Route]) -> dict[str, Any]:
    components: dict[str, Any] = {"Error": _ERROR_SCHEMA, "Accepted": _ACCEPTED_SCHEMA}
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        for cls in route.apis:
            item = paths.setdefault(V1 + route.path, {})
            operation = _operation(route, cls, components)
            method = route.method.lower()
            if method in item:  # PUT actions sharing a path: ZStack's body-key dispatch
                _add_action(item[method], operation)
            else:
                item[method] = operation
    paths[f"{V1}{JOBS_PATH}/{{uuid}}"] = {
        "get": {
            "operationId": "GetApiJob",
            "summary": "Poll an async API's job: 202 {} while it runs, then its result",
            "security": [],
            "parameters": [
                {"name": "uuid", "in": "path", "required": True, "schema": {"type": "string"}}
            ],
            # A failed job answers with its error's status, as the API itself would.
            "responses": {
                "200": {"description": "done", "content": _json({"type": "object"})},
                "202": {"description": "still running", "content": _json({"type": "object"})},
            }
            | _error_responses(),
        }
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "zstackpy REST API", "version": __version__},
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {
                "OAuth": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "Authorization",
                    "description": "OAuth <session uuid>",
                }
            },
        },
        "security": [{"OAuth": []}],
    }


def docs_page(routes: list[Route]) -> str:
    """A self-contained HTML list of the APIs (no scripts, no external assets)."""
    rows = []
    for route in routes:
        for cls in route.apis:
            spec = cls.api
            assert spec is not None
            summary = spec.summary or (cls.__doc__ or "").strip().split("\n")[0]
            cells = (
                route.method,
                V1 + route.path,
                spec.name + (" (by uuid)" if route.by_uuid else ""),
                "async" if spec.is_async else "sync",
                body_key(cls) if route.method in ("POST", "PUT") else "",
                summary,
            )
            rows.append("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>")
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>zstackpy API</title>"
        "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}</style></head><body>"
        f"<h1>zstackpy REST API</h1><p>{len(rows)} operations. Machine-readable: "
        f"<a href='{V1}/openapi.json'>openapi.json</a>. Async APIs answer 202 and a "
        f"location to poll at <code>{V1}{JOBS_PATH}/&lt;uuid&gt;</code>.</p>"
        "<table><tr><th>verb</th><th>path</th><th>API</th><th>kind</th><th>body key</th>"
        "<th>summary</th></tr>" + "".join(rows) + "</table></body></html>"
    )
