"""Test-only API messages for the HTTP front-ends (``plugins=["tests.support.api_probe:plugin"]``).

All are sessionless, so the front-end tests do not depend on identity. ``CALLS`` records
every handled message (by name) in this process: tests count how often a handler ran.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any, ClassVar, Literal

from pydantic import Field

from zstackpy.api.messages import (
    APICreateMessage,
    APIMessage,
    APIQueryMessage,
    APIQueryReply,
    APIReply,
    ApiSpec,
)
from zstackpy.core.errors import ZError
from zstackpy.core.plugin import PluginRegistry
from zstackpy.core.service import Service, handles

SERVICE = "apiProbe"
CALLS: Counter[str] = Counter()


class APIProbeEchoMsg(APIMessage):
    """Echo the fields back (sync GET)."""

    api_service: ClassVar[str] = SERVICE
    api: ClassVar[ApiSpec | None] = ApiSpec(
        name="ProbeEcho",
        java_class="test.zstackpy.APIProbeEchoMsg",
        method="GET",
        path="/probe/echo",
        is_async=False,
        result_java_class="test.zstackpy.APIProbeEchoReply",
        needs_session=False,
    )
    text: str
    count: int = 1
    items: list[str] = Field(default_factory=list)
    labels: dict[str, str] = Field(default_factory=dict)


class APIProbeEchoReply(APIReply):
    inventory: dict[str, Any]


class APIProbeCreateThingMsg(APICreateMessage):
    """Create a thing (async POST); ``sleepS`` keeps the job running that long."""

    api_service: ClassVar[str] = SERVICE
    api: ClassVar[ApiSpec | None] = ApiSpec(
        name="ProbeCreateThing",
        java_class="test.zstackpy.APIProbeCreateThingMsg",
        method="POST",
        path="/probe/things",
        body_key="params",
        result_java_class="test.zstackpy.APIProbeCreateThingEvent",
        needs_session=False,
        creates="ProbeThing",
    )
    name: str
    size: int = 0
    sleep_s: float = 0.0


class APIProbeThingEvent(APIReply):
    inventory: dict[str, Any]


class APIProbeRenameThingMsg(APIMessage):
    """Rename a thing (sync PUT action)."""

    api_service: ClassVar[str] = SERVICE
    api: ClassVar[ApiSpec | None] = ApiSpec(
        name="ProbeRenameThing",
        java_class="test.zstackpy.APIProbeRenameThingMsg",
        method="PUT",
        path="/probe/things/{uuid}/actions",
        body_key="probeRenameThing",
        is_async=False,
        needs_session=False,
    )
    uuid: str
    name: str


class APIProbeFailMsg(APIMessage):
    """Fail with the given error code (a second action on the same path)."""

    api_service: ClassVar[str] = SERVICE
    api: ClassVar[ApiSpec | None] = ApiSpec(
        name="ProbeFail",
        java_class="test.zstackpy.APIProbeFailMsg",
        method="PUT",
        path="/probe/things/{uuid}/actions",
        body_key="probeFail",
        is_async=False,
        result_java_class="test.zstackpy.APIProbeFailReply",
        needs_session=False,
    )
    uuid: str
    code: str


class APIProbeDeleteThingMsg(APIMessage):
    """Delete a thing (async DELETE); fails with ``failCode`` when given."""

    api_service: ClassVar[str] = SERVICE
    api: ClassVar[ApiSpec | None] = ApiSpec(
        name="ProbeDeleteThing",
        java_class="test.zstackpy.APIProbeDeleteThingMsg",
        method="DELETE",
        path="/probe/things/{uuid}",
        result_java_class="test.zstackpy.APIProbeDeleteThingEvent",
        needs_session=False,
    )
    uuid: str
    delete_mode: Literal["Permissive", "Enforcing"] = "Permissive"
    fail_code: str | None = None


class APIProbeQueryThingMsg(APIQueryMessage):
    """Answered by the probe itself (not the query engine): it echoes what it was asked."""

    api_service: ClassVar[str] = SERVICE
    api: ClassVar[ApiSpec | None] = ApiSpec(
        name="ProbeQueryThing",
        java_class="test.zstackpy.APIProbeQueryThingMsg",
        method="GET",
        path="/probe/things",
        is_async=False,
        result_java_class="test.zstackpy.APIProbeQueryThingReply",
        needs_session=False,
    )


class ApiProbeService(Service):
    name = SERVICE

    @handles(APIProbeEchoMsg)
    async def echo(self, msg: APIProbeEchoMsg) -> APIProbeEchoReply:
        CALLS["ProbeEcho"] += 1
        return APIProbeEchoReply(inventory=msg.model_dump(mode="json", exclude={"auth"}))

    @handles(APIProbeCreateThingMsg)
    async def create(self, msg: APIProbeCreateThingMsg) -> APIProbeThingEvent:
        CALLS["ProbeCreateThing"] += 1
        CALLS[f"ProbeCreateThing:{msg.name}"] += 1
        await asyncio.sleep(msg.sleep_s)
        return APIProbeThingEvent(
            inventory={"uuid": msg.resource_uuid, "name": msg.name, "size": msg.size}
        )

    @handles(APIProbeRenameThingMsg)
    async def rename(self, msg: APIProbeRenameThingMsg) -> APIProbeThingEvent:
        CALLS["ProbeRenameThing"] += 1
        return APIProbeThingEvent(
            inventory={"uuid": msg.uuid, "name": msg.name, "userTags": msg.user_tags}
        )

    @handles(APIProbeFailMsg)
    async def fail(self, msg: APIProbeFailMsg) -> APIReply:
        raise ZError(msg.code, f"failing as asked with {msg.code}", uuid=msg.uuid)

    @handles(APIProbeDeleteThingMsg)
    async def delete(self, msg: APIProbeDeleteThingMsg) -> APIReply:
        CALLS["ProbeDeleteThing"] += 1
        if msg.fail_code:
            raise ZError(msg.fail_code, "cannot delete", uuid=msg.uuid)
        return APIReply()

    @handles(APIProbeQueryThingMsg)
    async def query(self, msg: APIProbeQueryThingMsg) -> APIQueryReply:
        CALLS["ProbeQueryThing"] += 1
        asked = msg.model_dump(mode="json", exclude={"auth", "session_uuid"})
        return APIQueryReply(inventories=[asked], total=1 if msg.reply_with_count else None)


class ApiProbePlugin:
    name = "api-probe"

    def setup(self, registry: PluginRegistry) -> None:
        registry.add_service(ApiProbeService)


plugin = ApiProbePlugin()
