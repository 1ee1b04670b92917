"""API messages: what ZStack clients send, declared once with their wire identity.

Every API message class declares an ``ApiSpec``: its ZStack name (``CreateZone``, the CLI
command), its Java class name (the legacy RPC key), its REST method, path and body key,
whether it answers at once or through a job, and the Java class its result travels under.
Routes, the OpenAPI document and the CLI's command list are generated from these.

Field names are snake_case in Python and camelCase on the wire, as ZStack's JSON is.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_serializer, field_validator
from pydantic.alias_generators import to_camel

from zstackpy.core.bus.message import NeedReplyMessage, Reply
from zstackpy.core.bus.transport import API_PORTAL

HttpMethod = Literal["GET", "POST", "PUT", "DELETE"]

# ZStack's Gson default date format ("Jan 6, 2017 3:51:16 AM"); its SDKs parse exactly this.
ZSTACK_DATE_FORMAT = "%b %-d, %Y %-I:%M:%S %p"
# The same for strptime, which reads unpadded numbers but knows no "%-".
_ZSTACK_DATE_PARSE = "%b %d, %Y %I:%M:%S %p"
_ZSTACK_DATE = re.compile(r"^[A-Z][a-z]{2} \d{1,2}, \d{4} \d{1,2}:\d{2}:\d{2} [AP]M$")


def format_zstack_date(value: datetime) -> str:
    return value.strftime(ZSTACK_DATE_FORMAT)


@dataclass(frozen=True, slots=True)
class ApiSpec:
    """How one API looks from outside. ``path`` is relative to ``/zstack/v1``."""

    name: str
    java_class: str
    method: HttpMethod
    path: str
    body_key: str | None = None  # "params", an action name, or None (GET/DELETE)
    is_async: bool = True
    result_java_class: str = ""  # the RPC result key: ...Event (async) or ...Reply (sync)
    needs_session: bool = True
    admin_only: bool = False
    creates: str | None = None  # resource type a create makes: the portal gives it its UUID
    summary: str = ""

    @property
    def action_name(self) -> str:
        """ZStack's action key: the name with its first letter lower-cased."""
        return self.name[:1].lower() + self.name[1:]


class WireModel(BaseModel):
    """camelCase on the wire, snake_case in Python; unknown wire fields ignored."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="ignore", serialize_by_alias=True
    )


class Inventory(WireModel):
    """The API view of a resource (``<Noun>Inventory``). Dates use ZStack's JSON form."""

    @field_serializer("*", when_used="json")
    def _dates(self, value: Any) -> Any:
        return format_zstack_date(value) if isinstance(value, datetime) else value

    @field_validator("*", mode="before")
    @classmethod
    def _read_dates(cls, value: Any, info: ValidationInfo) -> Any:
        # A reply crossing nodes is this model's JSON: the dates _dates wrote must read
        # back, or every inventory answered by another node fails to decode.
        if isinstance(value, str) and _ZSTACK_DATE.match(value):
            field = cls.model_fields.get(info.field_name or "")
            if field is not None and "datetime" in str(field.annotation):
                # Naive UTC, as every date in the database.
                return datetime.strptime(value, _ZSTACK_DATE_PARSE)  # noqa: DTZ007
        return value


class AuthContext(BaseModel):
    """Who sent an API message; filled by the portal after it checked the session."""

    session_uuid: str
    account_uuid: str
    user_uuid: str | None = None
    is_admin: bool = False


class APIMessage(NeedReplyMessage):
    """A request from outside (REST, RPC, CLI), sent to the shared
    ``zstack.message.api.portal`` queue, so any live node may take it. That node's portal
    checks the session, gives a create its resource UUID, checks the caller may touch the
    resource the message is about, and forwards it to ``api_service`` on the ring owner.
    """

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="ignore", serialize_by_alias=True
    )

    service: ClassVar[str] = API_PORTAL
    api_service: ClassVar[str] = ""
    api: ClassVar[ApiSpec | None] = None

    session_uuid: str | None = Field(None, description="set by the front-end from the request")
    auth: AuthContext | None = Field(None, description="set by the portal, never by clients")
    api_timeout_s: float | None = Field(
        None,
        description="set by the front-end: how long the caller waits; the portal's call "
        "to the owning service gets the same budget",
    )
    system_tags: list[str] = Field(default_factory=list)
    user_tags: list[str] = Field(default_factory=list)

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        if cls.__dict__.get("api") is not None:
            register_api(cls)

    def require_auth(self) -> AuthContext:
        if self.auth is None:
            raise RuntimeError(f"{self.wire_type()} reached a service without an auth context")
        return self.auth


class APICreateMessage(APIMessage):
    """A create: takes the caller's ``resourceUuid`` or gets one at the portal."""

    resource_uuid: str | None = None


class APIReply(Reply):
    """Replies and results of API messages; every field but success/error is the body."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="ignore", serialize_by_alias=True
    )

    def body(self) -> dict[str, Any]:
        """The REST response body (ZStack's ``fieldsTo all``)."""
        data: dict[str, Any] = self.model_dump(
            mode="json", by_alias=True, exclude={"success", "error"}, exclude_none=True
        )
        return data


_APIS_BY_NAME: dict[str, type[APIMessage]] = {}
_APIS_BY_JAVA_CLASS: dict[str, type[APIMessage]] = {}


def register_api(cls: type[APIMessage]) -> None:
    spec = cls.api
    assert spec is not None
    for table, key in ((_APIS_BY_NAME, spec.name), (_APIS_BY_JAVA_CLASS, spec.java_class)):
        existing = table.get(key)
        if existing is not None and existing.__qualname__ != cls.__qualname__:
            raise TypeError(f"API {key!r} is declared by both {existing} and {cls}")
        table[key] = cls


def api_by_name(name: str) -> type[APIMessage] | None:
    return _APIS_BY_NAME.get(name)


def api_by_java_class(java_class: str) -> type[APIMessage] | None:
    return _APIS_BY_JAVA_CLASS.get(java_class)


def all_apis() -> list[type[APIMessage]]:
    return sorted(_APIS_BY_NAME.values(), key=lambda c: c.api.name if c.api else "")


class QueryCondition(WireModel):
    """One query condition, as the legacy RPC API sends it; REST ``q=`` strings are parsed
    into these. ``op`` is ZStack's QueryOp text (``=``, ``!=``, ``>``, ``<``, ``>=``, ``<=``,
    ``in``, ``not in``, ``like``, ``not like``, ``is null``, ``is not null``)."""

    name: str
    op: str
    value: str | None = None


class APIQueryMessage(APIMessage):
    """A query of one resource type (``Query<Noun>``). Answers APIQueryReply."""

    api_service: ClassVar[str] = "query"  # one generic service answers every query
    query_of: ClassVar[str] = ""  # the queryable resource name, e.g. "Zone"

    conditions: list[QueryCondition] = Field(default_factory=list)
    limit: int = Field(1000, ge=0)
    start: int = Field(0, ge=0)
    count: bool = False
    reply_with_count: bool = False
    sort_by: str | None = None
    sort_direction: Literal["asc", "desc"] = "asc"
    fields: list[str] = Field(default_factory=list)


class APIQueryReply(APIReply):
    inventories: list[dict[str, Any]] | None = None
    total: int | None = None
