"""The actions the CLI knows, read from the node's OpenAPI document (never a hand-kept
list, so a new API shows up without a CLI change), cached per node in the user's cache
directory and revalidated with its ETag on every start (a 304 costs one loopback trip).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from zstackpy.cli.client import V1, Client

OPENAPI_PATH = V1 + "/openapi.json"
# Bump when the cached form changes: an old cache is then ignored, not misread.
CACHE_FORMAT = 1
# Keys a REST query takes besides its conditions (ZStack CLI names; see args.py).
QUERY_KEYS = ("count", "fields", "limit", "replyWithCount", "sortBy", "sortDirection", "start")


@dataclass(frozen=True)
class Param:
    name: str
    kind: str  # string, integer, number, boolean, array, object
    where: str  # path, query or body
    required: bool = False
    item_kind: str = "string"  # of an array
    choices: tuple[str, ...] = ()


@dataclass(frozen=True)
class Action:
    name: str  # CreateZone
    method: str
    path: str  # absolute, with the API's own variable names
    is_async: bool
    is_query: bool
    needs_session: bool
    body_key: str | None = None
    summary: str = ""
    params: dict[str, Param] = field(default_factory=dict)

    @property
    def path_vars(self) -> list[str]:
        return [p.name for p in self.params.values() if p.where == "path"]


class Catalogue:
    def __init__(self, actions: dict[str, Action]) -> None:
        self.actions = actions
        self._lower = {name.lower(): a for name, a in actions.items()}

    def get(self, name: str) -> Action | None:
        """By name, case-insensitively (``queryzone`` works, as in ZStack's CLI)."""
        return self.actions.get(name) or self._lower.get(name.lower())

    def names(self) -> list[str]:
        return sorted(self.actions)

    def query_for(self, noun: str) -> Action | None:
        """The query of the resource a ``<noun>Uuid`` parameter names: the longest
        ``Query<X>`` whose X ends ``noun`` (``destHost`` -> QueryHost, ``rootVolume`` ->
        QueryVolume)."""
        noun = noun.lower()
        best: Action | None = None
        best_len = 0
        for action in self.actions.values():
            if not action.is_query or not action.name.startswith("Query"):
                continue
            x = action.name[len("Query") :].lower()
            if x and noun.endswith(x) and len(x) > best_len:
                best, best_len = action, len(x)
        return best

    def query_of_path(self, path: str) -> Action | None:
        """The query whose collection is ``path``'s stem: ``/vm-instances/{uuid}/actions``
        -> QueryVmInstance (``GET /vm-instances``)."""
        stem = path.split("/{", 1)[0]
        for action in self.actions.values():
            if action.is_query and action.path == stem:
                return action
        return None

    def to_json(self) -> dict[str, Any]:
        return {name: asdict(a) for name, a in self.actions.items()}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Catalogue:
        actions = {}
        for name, a in data.items():
            params = {
                p["name"]: Param(**{**p, "choices": tuple(p["choices"])})
                for p in a["params"].values()
            }
            actions[name] = Action(**{**a, "params": params})
        return cls(actions)


# ----- from the OpenAPI document ------------------------------------------------------------


def from_openapi(doc: dict[str, Any]) -> Catalogue:
    schemas: dict[str, Any] = doc.get("components", {}).get("schemas", {})
    actions: dict[str, Action] = {}
    for path, item in doc.get("paths", {}).items():
        for method, op in item.items():
            for each in [op, *op.get("x-zstack-actions", [])]:
                name = each.get("x-zstack-api") or each["operationId"]
                # GET /<collection>/{uuid} repeats its query under another operationId.
                if each["operationId"] != name:
                    continue
                actions[name] = _action(name, method.upper(), path, each, schemas)
    return Catalogue(actions)


def _action(
    name: str, method: str, route_path: str, op: dict[str, Any], schemas: dict[str, Any]
) -> Action:
    path = op.get("x-zstack-path", route_path)
    params: dict[str, Param] = {}
    for var in _path_vars(path):
        params[var] = Param(var, "string", "path", required=True)
    parameters = op.get("parameters", [])
    is_query = any(p["name"] == "q" and p["in"] == "query" for p in parameters)
    if not is_query:
        for p in parameters:
            if p["in"] == "query":
                params[p["name"]] = _param(
                    p["name"], p.get("schema", {}), "query", p.get("required", False), schemas
                )
    body_key = op.get("x-zstack-body-key")
    body = op.get("requestBody", {}).get("content", {}).get("application/json", {})
    fields = _body_fields(body.get("schema", {}), body_key, schemas)
    required = set(fields.get("required", []))
    for pname, schema in fields.get("properties", {}).items():
        if pname not in params:
            params[pname] = _param(pname, schema, "body", pname in required, schemas)
    return Action(
        name=name,
        method=method,
        path=path,
        is_async=bool(op.get("x-zstack-async")),
        is_query=is_query,
        needs_session=op.get("security") != [],
        body_key=body_key,
        summary=op.get("summary", ""),
        params=params,
    )


def _path_vars(path: str) -> list[str]:
    return [part[1:-1] for part in path.split("/") if part.startswith("{") and part.endswith("}")]


def _deref(schema: dict[str, Any], schemas: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = schemas.get(schema["$ref"].rsplit("/", 1)[-1], {})
    return schema


def _body_fields(
    schema: dict[str, Any], body_key: str | None, schemas: dict[str, Any]
) -> dict[str, Any]:
    """The fields object of one action's body ``{"<body_key>": {...}, ...}``; a shared PUT
    path's body is anyOf the actions' shapes, told apart by that key."""
    schema = _deref(schema, schemas)
    for shape in schema.get("anyOf", [schema]):
        shape = _deref(shape, schemas)
        props = shape.get("properties", {})
        if body_key in props:
            return _deref(props[body_key], schemas)
    return {}


def _param(
    name: str, schema: dict[str, Any], where: str, required: bool, schemas: dict[str, Any]
) -> Param:
    schema = _concrete(schema, schemas)
    kind = schema.get("type", "string")
    if "const" in schema or kind not in ("integer", "number", "boolean", "array", "object"):
        kind = "string"
    item = _concrete(schema.get("items", {}), schemas) if kind == "array" else {}
    choices = schema.get("enum", []) if kind == "string" else item.get("enum", [])
    return Param(
        name,
        kind,
        where,
        required=required,
        item_kind=str(item.get("type", "string")),
        choices=tuple(str(c) for c in choices),
    )


def _concrete(schema: dict[str, Any], schemas: dict[str, Any]) -> dict[str, Any]:
    """The non-null branch of an optional field (``anyOf: [X, null]``), references followed."""
    schema = _deref(schema, schemas)
    for branch in schema.get("anyOf", []):
        branch = _deref(branch, schemas)
        if branch.get("type") != "null":
            return branch
    return schema


# ----- the cache ----------------------------------------------------------------------------


class CatalogueError(Exception):
    """The node answered, but not with a usable OpenAPI document."""


def load(client: Client, cache_dir: Path) -> Catalogue:
    """The node's catalogue: the cached one when the node says it has not changed (304),
    else fetched, parsed and cached. Raises UnreachableError, CatalogueError."""
    key = hashlib.sha256(client.base_url.encode()).hexdigest()[:16]
    cache = cache_dir / f"actions-{key}.json"
    cached: dict[str, Any] = {}
    with contextlib.suppress(OSError, ValueError):  # no or a damaged cache: fetch anew
        cached = json.loads(cache.read_text())
    headers = {}
    if cached.get("format") == CACHE_FORMAT and cached.get("etag"):
        headers["If-None-Match"] = cached["etag"]
    answer = client.request("GET", OPENAPI_PATH, headers=headers)
    if answer.status == 304:
        return Catalogue.from_json(cached["actions"])
    if answer.status != 200 or not isinstance(answer.body, dict):
        raise CatalogueError(
            f"{client.base_url}{OPENAPI_PATH} answered {answer.status}: is this a zstackpy node?"
        )
    catalogue = from_openapi(answer.body)
    etag = answer.headers.get("etag")
    if etag:
        _write_atomic(
            cache,
            json.dumps({"format": CACHE_FORMAT, "etag": etag, "actions": catalogue.to_json()}),
        )
    return catalogue


def _write_atomic(path: Path, text: str) -> None:
    # A cache that cannot be written only costs speed: never fail the command for it.
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(text)
        tmp.replace(path)
    except OSError:
        pass
