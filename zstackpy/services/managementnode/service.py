"""managementNode service handlers."""

from __future__ import annotations

import asyncio

from zstackpy import __version__
from zstackpy.core.bus.message import Reply
from zstackpy.core.errors import SysErr, ZError
from zstackpy.core.service import Service, handles
from zstackpy.services.managementnode.messages import (
    APIDrainManagementNodeEvent,
    APIDrainManagementNodeMsg,
    APIGetVersionMsg,
    APIGetVersionReply,
    APIIsReadyToGoMsg,
    APIIsReadyToGoReply,
    DrainManagementNodeMsg,
    GetManagementNodeInfoMsg,
    GetManagementNodeInfoReply,
    WhoOwnsResourceMsg,
    WhoOwnsResourceReply,
)


class ManagementNodeService(Service):
    name = "managementNode"

    @handles(GetManagementNodeInfoMsg)
    async def info(self, msg: GetManagementNodeInfoMsg) -> GetManagementNodeInfoReply:
        bus = self.ctx.bus
        return GetManagementNodeInfoReply(
            node_uuid=self.ctx.node_uuid,
            state="running",
            ring=sorted(self.ctx.ring.nodes),
            services=sorted(bus.services),
        )

    @handles(APIGetVersionMsg)
    async def version(self, msg: APIGetVersionMsg) -> APIGetVersionReply:
        return APIGetVersionReply(version=__version__)

    @handles(WhoOwnsResourceMsg)
    async def who_owns(self, msg: WhoOwnsResourceMsg) -> WhoOwnsResourceReply:
        return WhoOwnsResourceReply(node_uuid=self.ctx.node_uuid, resource_uuid=msg.resource_uuid)

    @handles(APIIsReadyToGoMsg)
    async def is_ready_to_go(self, msg: APIIsReadyToGoMsg) -> Reply:
        target = msg.management_node_id
        if target and target != self.ctx.node_uuid:
            if target not in self.ctx.ring:
                # Unknown to the ring: gone, or never was; either way nothing to ask.
                raise ZError(
                    SysErr.RESOURCE_NOT_FOUND,
                    f"no management node {target} in the ring",
                    managementNodeId=target,
                )
            # That node answers for itself (SYS.1012 if it leaves before it answers).
            forwarded = msg.model_copy(update={"management_node_id": None})
            return await self.ctx.bus.call(forwarded, node=target, service=self.name)
        if self.ctx.health is None:
            raise ZError(SysErr.NOT_READY, "this node has no health check")
        report = await self.ctx.health.check()
        if not report.is_ready:
            raise ZError(
                SysErr.NOT_READY,
                f"management node {report.node_uuid} is not ready: {'; '.join(report.reasons)}",
                managementNodeId=report.node_uuid,
                checks=report.checks,
                reasons=report.reasons,
            )
        return APIIsReadyToGoReply(
            management_node_id=report.node_uuid, state="ready", checks=report.checks
        )

    @handles(APIDrainManagementNodeMsg)
    async def drain_api(self, msg: APIDrainManagementNodeMsg) -> APIDrainManagementNodeEvent:
        target = msg.uuid
        if target != self.ctx.node_uuid and target not in self.ctx.ring:
            raise ZError(
                SysErr.RESOURCE_NOT_FOUND,
                f"no management node {target} in the ring",
                uuid=target,
            )
        reply = await self.ctx.bus.call(DrainManagementNodeMsg(), node=target, service=self.name)
        reply.raise_if_error()
        return APIDrainManagementNodeEvent(management_node_id=target, state="draining")

    @handles(DrainManagementNodeMsg)
    async def drain(self, msg: DrainManagementNodeMsg) -> Reply:
        request_stop = self.ctx.request_stop
        if request_stop is None:
            raise ZError(
                SysErr.NOT_READY,
                f"management node {self.ctx.node_uuid} cannot be stopped from the API "
                "(it runs inside another program)",
                uuid=self.ctx.node_uuid,
            )
        # After this reply is on its way: the drain that follows keeps serving messages,
        # so the reply and the API job that asked still end normally.
        asyncio.get_running_loop().call_soon(request_stop)
        return Reply()
