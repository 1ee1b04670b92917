"""From HTTP input to an API message: JSON bodies, query strings, path variables, headers.

Everything here only parses and validates; what the message means is the services' job.
Every failure is a ZError SYS.1007 that the front-ends render as 400.
"""

from __future__ import annotations

import json
import re
import types
from typing import Any, Union, get_args, get_origin

from aiohttp import web
from multidict import MultiMapping
from pydantic import ValidationError
from pydantic.fields import FieldInfo

from zstackpy.api.messages import APIMessage
from zstackpy.core.errors import SysErr, ZError
from zstackpy.core.ids import is_uuid

# Fields clients must never set: the front-end fills the session, the portal the auth.
RESERVED_FIELDS = frozenset({"session_uuid", "auth"})
TAG_KEYS = ("systemTags", "userTags")
_INDEXED = re.compile(r"^(?P<base>[A-Za-z_]\w*)\.(?P<sub>[^.]+)$")


def invalid(description: str, **details: Any) -> ZError:
    return ZError(SysErr.INVALID_ARGUMENT, description, **details)


def reserved_keys(cls: type[APIMessage]) -> frozenset[str]:
    """Wire and Python names of the reserved fields."""
    keys: set[str] = set()
    for name in RESERVED_FIELDS:
        keys.add(name)
        field = cls.model_fields.get(name)
        if field is not None and field.alias:
            keys.add(field.alias)
    return frozenset(keys)


async def read_json_object(request: web.Request) -> dict[str, Any]:
    """The body as a JSON object; an empty body is ``{}`` (ZStack's attach POSTs)."""
    raw = await request.read()  # raises 413 past client_max_size
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise invalid(f"the body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise invalid("the body must be a JSON object")
    return data


def session_from_header(request: web.Request) -> str | None:
    """``Authorization: OAuth <session uuid>``; None without the header (the portal then
    decides whether the API needs a session)."""
    header = request.headers.get("Authorization")
    if header is None:
        return None
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "oauth":
        raise invalid("Authorization type must be 'OAuth'", scheme=scheme)
    token = token.strip()
    if not token:
        raise invalid("Authorization 'OAuth' has no session uuid")
    return token


def job_uuid_from_header(request: web.Request) -> str | None:
    value = request.headers.get("X-Job-UUID")
    if value is None:
        return None
    job = value.strip().lower()
    if not is_uuid(job):
        raise invalid("X-Job-UUID must be 32 hex digits without dashes", jobUuid=value)
    return job


def timeout_from_header(request: web.Request) -> float | None:
    """``X-API-Timeout`` in seconds."""
    value = request.headers.get("X-API-Timeout")
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not 0 < seconds < float("inf"):
        raise invalid("X-API-Timeout must be a positive number of seconds", value=value)
    return seconds


def _unwrap(annotation: Any) -> Any:
    """``list[str] | None`` -> ``list[str]``."""
    if get_origin(annotation) in (Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return annotation


def _is_list(field: FieldInfo) -> bool:
    return get_origin(_unwrap(field.annotation)) in (list, set, tuple, frozenset)


def _is_dict(field: FieldInfo) -> bool:
    return get_origin(_unwrap(field.annotation)) is dict


def fields_by_wire_name(cls: type[APIMessage]) -> dict[str, FieldInfo]:
    return {(f.alias or name): f for name, f in cls.model_fields.items()}


def fields_from_query(
    cls: type[APIMessage], query: MultiMapping[str], skip: frozenset[str] = frozenset()
) -> dict[str, Any]:
    """Message fields from a query string: lists as ``a=1&a=2``, ``a=1,2`` or
    ``a.0=1&a.1=2``; maps as ``m.key=value``; scalars take their first value."""
    fields = fields_by_wire_name(cls)
    data: dict[str, Any] = {}
    indexed: dict[str, dict[str, str]] = {}
    for key in dict.fromkeys(query.keys()):
        if key in skip:
            continue
        values = query.getall(key)
        field = fields.get(key)
        match = _INDEXED.match(key) if field is None else None
        if match is not None and match["base"] in fields:
            indexed.setdefault(match["base"], {}).update({match["sub"]: values[0]})
        elif field is not None and _is_list(field):
            data[key] = [item for value in values for item in value.split(",") if item]
        else:
            data[key] = values[0]
    for base, items in indexed.items():
        if _is_dict(fields[base]):
            data[base] = items
        elif _is_list(fields[base]):
            ordered = sorted(items.items(), key=lambda kv: int(kv[0]) if kv[0].isdigit() else 0)
            data.setdefault(base, []).extend(value for _, value in ordered)
    return data


def merge_tags(params: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
    """Tags at the body's top level (the server's form) or in the params (the Java SDK's)."""
    merged = dict(params)
    for key in TAG_KEYS:
        top = body.get(key)
        if top is None:
            continue
        inner = merged.get(key) or []
        # Checked before the merge: de-duplicating needs hashable items.
        for tags in (top, inner):
            if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
                raise invalid(f"{key} must be a list of strings", field=key)
        merged[key] = list(dict.fromkeys([*inner, *top]))
    return merged


def build_message(cls: type[APIMessage], data: dict[str, Any]) -> APIMessage:
    """Validate ``data`` (wire names) into ``cls``; reserved fields are dropped first."""
    reserved = reserved_keys(cls)
    clean = {k: v for k, v in data.items() if k not in reserved}
    try:
        return cls.model_validate(clean)
    except ValidationError as exc:
        problems = {
            ".".join(str(p) for p in err["loc"]) or "(body)": err["msg"] for err in exc.errors()
        }
        name = cls.api.name if cls.api is not None else cls.wire_type()
        raise invalid(
            f"invalid argument for {name}: " + ", ".join(sorted(problems)),
            fields=problems,
        ) from None
