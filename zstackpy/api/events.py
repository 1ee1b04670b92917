"""Events clients can follow on the event stream: resource changes and job completions."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from zstackpy.core.bus.message import Event


class ResourceChangedEvent(Event):
    """A resource was created, changed or deleted; ``inventory`` is its API view (None
    after a delete). Published by the service that owns the resource."""

    service: ClassVar[str] = "api.events"
    resource_type: str
    resource_uuid: str
    change: Literal["created", "updated", "deleted"]
    account_uuid: str | None = None
    inventory: dict[str, Any] | None = None
