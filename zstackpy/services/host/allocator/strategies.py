"""Built-in host allocator strategies (ZStack's names). Each orders the candidates that
passed every filter; the allocator then tries to reserve on them in that order."""

from __future__ import annotations

import random

from zstackpy.services.host.messages import AllocateHostMsg, HostCandidate


class DefaultHostAllocatorStrategy:
    """Random order: spreads VMs and keeps concurrent allocations from all racing for the
    same host."""

    name = "DefaultHostAllocatorStrategy"

    async def sort_hosts(
        self, request: AllocateHostMsg, candidates: list[HostCandidate]
    ) -> list[HostCandidate]:
        # Placement, not security: a non-cryptographic shuffle is what is wanted.
        return random.sample(candidates, len(candidates))


class MinimumMemoryUsageHostAllocatorStrategy:
    """Most free memory first (ties: most free CPU), filling hosts evenly."""

    name = "MinimumMemoryUsageHostAllocatorStrategy"

    async def sort_hosts(
        self, request: AllocateHostMsg, candidates: list[HostCandidate]
    ) -> list[HostCandidate]:
        return sorted(candidates, key=lambda h: (-h.available_memory, -h.available_cpu, h.uuid))


class MinimumCPUUsageHostAllocatorStrategy:
    """Most free vCPUs first (ties: most free memory)."""

    name = "MinimumCPUUsageHostAllocatorStrategy"

    async def sort_hosts(
        self, request: AllocateHostMsg, candidates: list[HostCandidate]
    ) -> list[HostCandidate]:
        return sorted(candidates, key=lambda h: (-h.available_cpu, -h.available_memory, h.uuid))


BUILTIN_STRATEGIES = (
    DefaultHostAllocatorStrategy(),
    MinimumMemoryUsageHostAllocatorStrategy(),
    MinimumCPUUsageHostAllocatorStrategy(),
)
