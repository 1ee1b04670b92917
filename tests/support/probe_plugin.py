"""A plugin that tests load into management-node processes (``ZSTACK_PLUGINS``).

It adds a ``probe`` service: a slow message to keep a call in flight, a relay that makes a
node send a message itself, and a record of the takeover hook's calls.
"""

from __future__ import annotations

import asyncio
from typing import ClassVar

from zstackpy.api.messages import APIMessage, APIReply, ApiSpec
from zstackpy.core.bus.message import NeedReplyMessage, Reply
from zstackpy.core.membership import NodeTakeover, RingChange
from zstackpy.core.plugin import PluginRegistry
from zstackpy.core.service import Service, handles
from zstackpy.services.managementnode.messages import WhoOwnsResourceMsg, WhoOwnsResourceReply


class ProbeSleepMsg(NeedReplyMessage):
    service: ClassVar[str] = "probe"
    route_by: ClassVar[str | None] = "resource_uuid"
    resource_uuid: str
    sleep_s: float = 0.0


class ProbeRelayWhoOwnsMsg(NeedReplyMessage):
    """Handled on the node it is sent to, which then asks who owns ``resource_uuid``."""

    service: ClassVar[str] = "probe"
    resource_uuid: str


class APIProbeWhoOwnsMsg(APIMessage):
    """An API message about a resource: through the shared portal to the owner's probe."""

    api_service: ClassVar[str] = "probe"
    api: ClassVar[ApiSpec | None] = ApiSpec(
        name="ProbeWhoOwns",
        java_class="test.zstackpy.APIProbeWhoOwnsMsg",
        method="GET",
        path="/probe/who-owns/{resourceUuid}",
        is_async=False,
        needs_session=False,
    )
    route_by: ClassVar[str | None] = "resource_uuid"
    resource_uuid: str


class APIProbeSleepMsg(APIMessage):
    """An async API message that sleeps on the owner of ``resource_uuid``: a job that stays
    Processing as long as a test needs (to kill its node under it, say)."""

    api_service: ClassVar[str] = "probe"
    api: ClassVar[ApiSpec | None] = ApiSpec(
        name="ProbeSleep",
        java_class="test.zstackpy.APIProbeSleepMsg",
        method="PUT",
        path="/probe/sleep/{resourceUuid}/actions",
        body_key="probeSleep",
        is_async=True,
        result_java_class="test.zstackpy.APIProbeSleepEvent",
        needs_session=False,
    )
    route_by: ClassVar[str | None] = "resource_uuid"
    resource_uuid: str
    sleep_s: float = 0.0


class APIProbeSleepEvent(APIReply):
    node_uuid: str


class ProbeRelaySleepMsg(NeedReplyMessage):
    """Handled on the node it is sent to, which then calls ProbeSleepMsg itself: the call
    in flight is that node's, so its reply shows how that node saw the owner's fate."""

    service: ClassVar[str] = "probe"
    resource_uuid: str
    sleep_s: float
    timeout_s: float


class ProbeTakeoversMsg(NeedReplyMessage):
    service: ClassVar[str] = "probe"


class ProbeNodeReply(Reply):
    node_uuid: str


class ProbeTakeoversReply(Reply):
    left: list[str]
    joined: list[str]


class ProbeService(Service):
    name = "probe"

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]  # Service's own signature
        self.left: list[str] = []
        self.joined: list[str] = []

    @handles(APIProbeWhoOwnsMsg)
    async def api_who_owns(self, msg: APIProbeWhoOwnsMsg) -> ProbeNodeReply:
        return ProbeNodeReply(node_uuid=self.ctx.node_uuid)

    @handles(APIProbeSleepMsg)
    async def api_sleep(self, msg: APIProbeSleepMsg) -> APIProbeSleepEvent:
        await asyncio.sleep(msg.sleep_s)
        return APIProbeSleepEvent(node_uuid=self.ctx.node_uuid)

    @handles(ProbeSleepMsg)
    async def sleep(self, msg: ProbeSleepMsg) -> ProbeNodeReply:
        await asyncio.sleep(msg.sleep_s)
        return ProbeNodeReply(node_uuid=self.ctx.node_uuid)

    @handles(ProbeRelayWhoOwnsMsg)
    async def relay(self, msg: ProbeRelayWhoOwnsMsg) -> WhoOwnsResourceReply:
        return await self.ctx.bus.request(
            WhoOwnsResourceMsg(resource_uuid=msg.resource_uuid), WhoOwnsResourceReply
        )

    @handles(ProbeRelaySleepMsg)
    async def relay_sleep(self, msg: ProbeRelaySleepMsg) -> Reply:
        return await self.ctx.bus.call(
            ProbeSleepMsg(resource_uuid=msg.resource_uuid, sleep_s=msg.sleep_s),
            timeout=msg.timeout_s,
        )

    @handles(ProbeTakeoversMsg)
    async def takeovers(self, msg: ProbeTakeoversMsg) -> ProbeTakeoversReply:
        return ProbeTakeoversReply(left=self.left, joined=self.joined)

    async def take_over(self, change: RingChange) -> None:
        self.left.extend(sorted(change.left))
        self.joined.extend(sorted(change.joined))


class ProbePlugin:
    name = "probe"

    def setup(self, registry: PluginRegistry) -> None:
        registry.add_service(ProbeService)
        registry.add_extension(NodeTakeover, ProbeService)


plugin = ProbePlugin()
