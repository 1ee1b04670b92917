"""The ``hostAllocator`` service: AllocateHostMsg runs ``host-allocate`` on whichever node
receives it (selection only reads); the reservation itself runs in the chosen host's
queue on its owner node, so any number of allocators may run at once."""

from __future__ import annotations

from zstackpy.core.coalesce import CoalescedReads
from zstackpy.core.context import NodeContext
from zstackpy.core.errors import ZError
from zstackpy.core.service import Service, handles
from zstackpy.services.host.allocator.flows import (
    AllocateHostCtx,
    CandidateKey,
    read_candidates,
)
from zstackpy.services.host.extensions import HostAllocatorStrategy
from zstackpy.services.host.messages import (
    HOST_ALLOCATOR_SERVICE,
    AllocateHostMsg,
    AllocateHostReply,
    APIGetHostAllocatorStrategiesMsg,
    APIGetHostAllocatorStrategiesReply,
    HostCandidate,
    HostErr,
)

ALLOCATE_CHAIN = "host-allocate"


class HostAllocatorService(Service):
    name = HOST_ALLOCATOR_SERVICE

    def __init__(self, ctx: NodeContext) -> None:
        super().__init__(ctx)
        self._candidate_reads: CoalescedReads[CandidateKey, list[HostCandidate]] = CoalescedReads(
            lambda key: read_candidates(ctx, key)
        )

    @handles(AllocateHostMsg)
    async def allocate(self, msg: AllocateHostMsg) -> AllocateHostReply:
        ctx = AllocateHostCtx(
            node=self.ctx,
            request=msg,
            strategy=self._strategy(msg.strategy),
            candidate_reads=self._candidate_reads,
        )
        await self.ctx.flows.run(ALLOCATE_CHAIN, ctx)
        return AllocateHostReply(host=ctx.chosen, candidates=ctx.candidates)

    @handles(APIGetHostAllocatorStrategiesMsg)
    async def strategies(
        self, msg: APIGetHostAllocatorStrategiesMsg
    ) -> APIGetHostAllocatorStrategiesReply:
        names = sorted(s.name for s in self.ctx.plugins.extensions(HostAllocatorStrategy))
        return APIGetHostAllocatorStrategiesReply(host_allocator_strategies=names)

    def _strategy(self, name: str) -> HostAllocatorStrategy:
        strategies = self.ctx.plugins.extensions(HostAllocatorStrategy)
        for strategy in strategies:
            if strategy.name == name:
                return strategy
        raise ZError(
            HostErr.UNKNOWN_STRATEGY,
            f"no host allocator strategy named {name!r}",
            strategy=name,
            validStrategies=sorted(s.name for s in strategies),
        )
