"""Finding free addresses of a range without loading all of its used ones.

Used addresses are read window by window through the UNIQUE (l3_network_uuid, ip_in_long)
index (the very key the database guards, so a scan sees every row that could conflict),
starting at a cursor, so a sparse range costs one small query per allocation batch and a
nearly full one is walked once, not once per address. Addresses are integers here.
"""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from zstackpy.services.network.models import UsedIpVO

MIN_WINDOW = 256


async def used_counts(session: AsyncSession, range_uuids: Collection[str]) -> dict[str, int]:
    """How many addresses of each range are allocated (ranges with none are absent)."""
    if not range_uuids:
        return {}
    rows = await session.execute(
        select(UsedIpVO.ip_range_uuid, func.count())
        .where(UsedIpVO.ip_range_uuid.in_(range_uuids))
        .group_by(UsedIpVO.ip_range_uuid)
    )
    return {uuid: int(count) for uuid, count in rows.all()}


async def is_used(session: AsyncSession, l3_uuid: str, address: int) -> bool:
    found = await session.execute(
        select(UsedIpVO.uuid).where(
            UsedIpVO.l3_network_uuid == l3_uuid, UsedIpVO.ip_in_long == address
        )
    )
    return found.first() is not None


async def free_addresses(
    session: AsyncSession,
    l3_uuid: str,
    low: int,
    high: int,
    count: int,
    *,
    skip: Collection[int] = (),
    wrap_from: int | None = None,
) -> list[int]:
    """Up to ``count`` free addresses of L3 network ``l3_uuid`` in ``[low, high]`` (a range
    of it), in address order
    from ``wrap_from`` (if given) to ``high`` then from ``low`` on; ``skip`` holds
    addresses taken by the caller but not yet stored."""
    found: list[int] = []
    segments = [(low, high)]
    if wrap_from is not None and low < wrap_from <= high:
        segments = [(wrap_from, high), (low, wrap_from - 1)]
    window = max(MIN_WINDOW, 2 * count)
    for first, last in segments:
        position = first
        while position <= last and len(found) < count:
            end = min(last, position + window - 1)
            rows = await session.execute(
                select(UsedIpVO.ip_in_long).where(
                    UsedIpVO.l3_network_uuid == l3_uuid,
                    UsedIpVO.ip_in_long.between(position, end),
                )
            )
            used = set(rows.scalars())
            for address in range(position, end + 1):
                if address not in used and address not in skip:
                    found.append(address)
                    if len(found) == count:
                        break
            position = end + 1
    return found
