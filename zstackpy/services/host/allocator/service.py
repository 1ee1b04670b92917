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
from zstackpy.services.host.allocator.pages import CandidatePages
from zstackpy.services.host.configs import PAGINATION_LIMIT, USE_PAGINATION
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

# A page without a host for these reasons sends the placement on to the next page.
_NEXT_PAGE = {HostErr.NO_AVAILABLE_HOST.value, HostErr.CAPACITY_EXHAUSTED.value}
# How far down ``host-allocate`` a page got before it failed (the last flow wins).
_STEP_ORDER = ("candidate-hosts", "filter-by-capacity", "filter-by-host-tags")


def _progress(err: ZError) -> int:
    if err.code == HostErr.CAPACITY_EXHAUSTED.value:
        return len(_STEP_ORDER) + 1  # every filter passed; the reservations were lost
    step = err.details.get("filter")
    # Any other filter is a plugin's, run after the built-in ones.
    return _STEP_ORDER.index(step) if step in _STEP_ORDER else len(_STEP_ORDER)


class HostAllocatorService(Service):
    name = HOST_ALLOCATOR_SERVICE

    def __init__(self, ctx: NodeContext) -> None:
        super().__init__(ctx)
        self._candidate_reads: CoalescedReads[CandidateKey, list[HostCandidate]] = CoalescedReads(
            lambda key: read_candidates(ctx, key)
        )

    @handles(AllocateHostMsg)
    async def allocate(self, msg: AllocateHostMsg) -> AllocateHostReply:
        strategy = self._strategy(msg.strategy)
        configs = self.ctx.configs
        if msg.dry_run or not configs.value(USE_PAGINATION):
            # A dry run answers every candidate: it reads them all.
            ctx = AllocateHostCtx(
                node=self.ctx, request=msg, strategy=strategy, candidate_reads=self._candidate_reads
            )
            await self.ctx.flows.run(ALLOCATE_CHAIN, ctx)
            return AllocateHostReply(host=ctx.chosen, candidates=ctx.candidates)
        return await self._allocate_paged(msg, strategy, configs.value(PAGINATION_LIMIT))

    async def _allocate_paged(
        self, msg: AllocateHostMsg, strategy: HostAllocatorStrategy, limit: int
    ) -> AllocateHostReply:
        """The chain on one page of candidates after another until a host is reserved;
        when no page had one, the error of the page that came closest (the furthest step
        of the chain) says why."""
        pages = CandidatePages(limit)
        closest: ZError | None = None
        while True:
            ctx = AllocateHostCtx(node=self.ctx, request=msg, strategy=strategy, pages=pages)
            try:
                await self.ctx.flows.run(ALLOCATE_CHAIN, ctx)
            except ZError as err:
                if err.code not in _NEXT_PAGE:
                    raise
                if closest is None or _progress(err) > _progress(closest):
                    closest = err
                pages.advance(ctx.page_uuids)
                if pages.done:
                    closest.details.setdefault("pagesRead", pages.read)
                    raise closest from None
                continue
            # The chosen host is enough: a page's candidates would only weigh on the bus.
            return AllocateHostReply(host=ctx.chosen, candidates=[])

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
