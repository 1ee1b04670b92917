"""The IPAM service: allocation and release of addresses (in the L3's queue, see
allocator.py) and the read-only address APIs (any node, no queue)."""

from __future__ import annotations

from zstackpy.core.bus.message import Reply
from zstackpy.core.context import NodeContext
from zstackpy.core.service import Service, handles
from zstackpy.services.network.ipam.allocator import IpAllocator
from zstackpy.services.network.ipam.api import (
    APICheckIpAvailabilityMsg,
    APIGetFreeIpMsg,
    APIGetIpAddressCapacityMsg,
    CheckIpAvailabilityReply,
    GetFreeIpReply,
    GetIpAddressCapacityReply,
)
from zstackpy.services.network.ipam.reads import free_ips, ip_availability, ip_capacity
from zstackpy.services.network.messages import (
    IPAM_SERVICE,
    AllocateIpMsg,
    AllocateIpReply,
    ReleaseIpMsg,
)


class IpamService(Service):
    name = IPAM_SERVICE

    def __init__(self, ctx: NodeContext) -> None:
        super().__init__(ctx)
        self.allocator = IpAllocator(ctx)

    @handles(AllocateIpMsg)
    async def allocate(self, msg: AllocateIpMsg) -> AllocateIpReply:
        return AllocateIpReply(ip=await self.allocator.allocate(msg))

    @handles(ReleaseIpMsg)
    async def release(self, msg: ReleaseIpMsg) -> Reply:
        await self.allocator.release(msg)
        return Reply()

    @handles(APIGetFreeIpMsg)
    async def get_free_ip(self, msg: APIGetFreeIpMsg) -> GetFreeIpReply:
        async with self.ctx.db.session() as session:
            return GetFreeIpReply(inventories=await free_ips(session, msg, msg.require_auth()))

    @handles(APICheckIpAvailabilityMsg)
    async def check_ip(self, msg: APICheckIpAvailabilityMsg) -> CheckIpAvailabilityReply:
        async with self.ctx.db.session() as session:
            return await ip_availability(session, msg, msg.require_auth())

    @handles(APIGetIpAddressCapacityMsg)
    async def ip_capacity(self, msg: APIGetIpAddressCapacityMsg) -> GetIpAddressCapacityReply:
        async with self.ctx.db.session() as session:
            return await ip_capacity(session, msg, msg.require_auth())
