"""managementNode service handlers."""

from __future__ import annotations

from zstackpy import __version__
from zstackpy.core.service import Service, handles
from zstackpy.services.managementnode.messages import (
    APIGetVersionMsg,
    APIGetVersionReply,
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
