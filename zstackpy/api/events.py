"""Events clients can follow on the event stream (``GET /zstack/v1/events``): resource
changes and job completions.

Both are bus events, so every node's stream sees them whichever node published them. Their
fields are camelCase on the wire (the stream's ``data:`` is the event's JSON as published).
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import ConfigDict, Field
from pydantic.alias_generators import to_camel

from zstackpy.core.bus.message import Event
from zstackpy.core.errors import ErrorInfo
from zstackpy.core.ids import new_uuid


class StreamEvent(Event):
    """An event shown on the event stream. ``event_id`` is chosen by the publisher, so every
    node's stream shows the same id for it (the SSE ``id:`` line). ``account_uuid`` decides
    who sees it: the admin sees every event, another account only its own; None (a
    sessionless API, the system itself) is for the admin only."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="ignore", serialize_by_alias=True
    )

    stream_name: ClassVar[str] = ""  # the SSE ``event:`` name

    event_id: str = Field(default_factory=new_uuid)
    account_uuid: str | None = None


class ResourceChangedEvent(StreamEvent):
    """A resource was created, changed or deleted; ``inventory`` is its API view (None
    after a delete). Published by the service that owns the resource; ``account_uuid`` is
    the account whose API call made the change."""

    service: ClassVar[str] = "api.events"
    stream_name: ClassVar[str] = "resourceChanged"

    resource_type: str
    resource_uuid: str
    change: Literal["created", "updated", "deleted"]
    inventory: dict[str, Any] | None = None


class JobCompletedEvent(StreamEvent):
    """An async API job ended: ``result`` is the API's reply body when Done, ``error`` the
    ErrorInfo when Failed. Published by the apiJob service of the node that recorded the
    outcome (the job's own node, or a survivor failing the jobs of a node that died)."""

    service: ClassVar[str] = "api.events"
    stream_name: ClassVar[str] = "jobCompleted"

    job_uuid: str
    api_name: str
    state: Literal["Done", "Failed"]
    resource_uuid: str | None = None
    result: dict[str, Any] | None = None
    error: ErrorInfo | None = None
