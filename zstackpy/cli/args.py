"""ZStack's ``key=value`` arguments -> one REST request.

Queries take conditions (``state=Running``, ``cpuNum>=2``, ``name~=web``, ``uuid?=a,b``,
``hostUuid=null``) and the reserved keys of QUERY_KEYS; other actions take their
parameters, converted to the types the OpenAPI document gives (lists comma-separated,
maps as JSON or Python literals). Identity APIs get their passwords SHA-512 hashed, as
ZStack clients send them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from zstackpy.cli.catalogue import QUERY_KEYS, Action, Param
from zstackpy.cli.settings import UsageError

# The key never holds an operator character, so the first operator after it is the one.
_ARG = re.compile(r"^([A-Za-z_][\w.]*)(!\?=|!~=|\?=|~=|!=|>=|<=|=|>|<)(.*)$", re.DOTALL)
_HASHED_PARAMS = ("password", "oldPassword")
_HASHING_ACTIONS = frozenset({"CreateAccount", "UpdateAccount", "CreateUser", "UpdateUser"})


@dataclass
class Request:
    method: str
    path: str
    query: list[tuple[str, str]] = field(default_factory=list)
    body: dict[str, Any] | None = None


def split_arg(token: str) -> tuple[str, str, str]:
    """``'cpuNum>=2'`` -> ``('cpuNum', '>=', '2')``. Raises UsageError."""
    match = _ARG.match(token)
    if match is None:
        raise UsageError(f"expected key=value, got {token!r}")
    key, op, value = match.groups()
    return key, op, value


def build(action: Action, args: list[str], implicit: dict[str, str] | None = None) -> Request:
    """The request of ``action`` called with ``args``; ``implicit`` fills path variables the
    user may leave out (LogOut's ``sessionUuid``). Raises UsageError."""
    if action.is_query:
        return _query(action, args)
    values: dict[str, Any] = {}
    for token in args:
        key, op, raw = split_arg(token)
        param = action.params.get(key)
        if param is None:
            raise UsageError(f"{action.name} has no parameter {key!r}; {_known(action)}")
        if op != "=":
            raise UsageError(f"{key}{op}...: only queries take operators other than '='")
        if key in values:
            raise UsageError(f"{key} is given twice")
        values[key] = convert(param, raw)
    for name, value in (implicit or {}).items():
        if name in action.params and name not in values:
            values[name] = value
    missing = [p.name for p in action.params.values() if p.required and p.name not in values]
    if missing:
        raise UsageError(f"{action.name} needs {', '.join(f'{m}=' for m in missing)}")
    if _hashes_passwords(action):
        for name in _HASHED_PARAMS:
            if isinstance(values.get(name), str):
                values[name] = sha512(values[name])
    path = action.path
    for var in action.path_vars:
        path = path.replace("{" + var + "}", quote(str(values.pop(var)), safe=""))
    request = Request(action.method, path)
    if action.method in ("POST", "PUT"):
        request.body = {action.body_key or "params": values}
    else:
        for name, value in values.items():
            for item in value if isinstance(value, list) else [value]:
                request.query.append((name, _text(item)))
    return request


def _known(action: Action) -> str:
    names = sorted(action.params)
    return "it takes " + ", ".join(names) if names else "it takes none"


def _hashes_passwords(action: Action) -> bool:
    return action.name.startswith("LogIn") or action.name in _HASHING_ACTIONS


def sha512(plain: str) -> str:
    import hashlib

    return hashlib.sha512(plain.encode()).hexdigest()


def convert(param: Param, raw: str) -> Any:
    """``raw`` as the parameter's type. Raises UsageError."""
    if param.kind == "array":
        items = [item.strip() for item in raw.split(",")] if raw else []
        return [_scalar(param.name, param.item_kind, param.choices, item) for item in items]
    if param.kind == "object":
        return _literal(param.name, raw)
    return _scalar(param.name, param.kind, param.choices, raw)


def _scalar(name: str, kind: str, choices: tuple[str, ...], raw: str) -> Any:
    if kind == "integer":
        try:
            return int(raw)
        except ValueError:
            raise UsageError(f"{name} must be a whole number, not {raw!r}") from None
    if kind == "number":
        try:
            return float(raw)
        except ValueError:
            raise UsageError(f"{name} must be a number, not {raw!r}") from None
    if kind == "boolean":
        if raw.lower() not in ("true", "false"):
            raise UsageError(f"{name} must be true or false, not {raw!r}")
        return raw.lower() == "true"
    if choices and raw not in choices:
        raise UsageError(f"{name} must be one of {', '.join(choices)}, not {raw!r}")
    return raw


def _literal(name: str, raw: str) -> Any:
    """A map or list given as JSON, or as a Python literal (ZStack's CLI habit)."""
    import json

    try:
        return json.loads(raw)
    except ValueError:
        pass
    import ast

    try:
        return ast.literal_eval(raw)
    except (ValueError, SyntaxError):
        raise UsageError(f"{name} must be JSON or a Python literal, not {raw!r}") from None


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


# ----- queries ------------------------------------------------------------------------------


def _query(action: Action, args: list[str]) -> Request:
    request = Request("GET", action.path)
    sort_by: str | None = None
    direction = "asc"
    for token in args:
        key, op, value = split_arg(token)
        if key in QUERY_KEYS and op == "=":
            if key == "sortBy":
                sort_by = value
            elif key == "sortDirection":
                if value not in ("asc", "desc"):
                    raise UsageError(f"sortDirection must be asc or desc, not {value!r}")
                direction = value
            else:
                request.query.append((key, _reserved(key, value)))
            continue
        request.query.append(("q", condition(key, op, value)))
    if sort_by:
        request.query.append(("sort", ("-" if direction == "desc" else "+") + sort_by))
    elif direction != "asc":
        raise UsageError("sortDirection needs sortBy")
    return request


def _reserved(key: str, value: str) -> str:
    if key in ("count", "replyWithCount"):
        return _text(_scalar(key, "boolean", (), value))
    if key in ("limit", "start"):
        number = _scalar(key, "integer", (), value)
        if number < 0:
            raise UsageError(f"{key} must not be negative")
        return str(number)
    return value  # fields: the node takes the comma-separated form as it is


def condition(key: str, op: str, value: str) -> str:
    """One REST ``q=`` condition from the CLI's form: ``=null`` / ``!=null`` test for
    null, ``~=`` without a wildcard matches anywhere (``%x%``), as in ZStack's CLI."""
    if value == "null" and op in ("=", "!="):
        return f"{key} is null" if op == "=" else f"{key} not null"
    if op in ("~=", "!~=") and "%" not in value and "_" not in value:
        value = f"%{value}%"
    return f"{key}{op}{value}"
