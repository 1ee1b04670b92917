"""Answers of the read-only IP APIs: free addresses, availability of one, capacity.

They read without any queue (an allocation may land right after): what they say is true
when said, which is all ZStack promises too.
"""

from __future__ import annotations

from collections.abc import Iterable
from ipaddress import IPv4Address

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from zstackpy.api.messages import AuthContext
from zstackpy.api.ownership import may_use
from zstackpy.core.db import ResourceVO
from zstackpy.core.errors import SysErr, ZError
from zstackpy.services.network.inventories import FreeIpInventory
from zstackpy.services.network.ipam.api import (
    APICheckIpAvailabilityMsg,
    APIGetFreeIpMsg,
    APIGetIpAddressCapacityMsg,
    CheckIpAvailabilityReply,
    GetIpAddressCapacityReply,
    IpCapacityData,
)
from zstackpy.services.network.ipam.scan import free_addresses, is_used, used_counts
from zstackpy.services.network.l3.ranges import parse_ipv4
from zstackpy.services.network.models import IpRangeVO, L3NetworkVO


async def _require(session: AsyncSession, noun: str, uuid: str, auth: AuthContext) -> None:
    if not await may_use(session, uuid, auth):
        raise ZError(SysErr.RESOURCE_NOT_FOUND, f"no {noun} with uuid {uuid}", uuid=uuid)


async def _ranges_of_l3(session: AsyncSession, l3_uuid: str) -> list[IpRangeVO]:
    rows = await session.execute(
        select(IpRangeVO)
        .where(IpRangeVO.l3_network_uuid == l3_uuid)
        .order_by(IpRangeVO.create_date, IpRangeVO.uuid)
    )
    return list(rows.scalars())


def _bounds(ip_range: IpRangeVO) -> tuple[int, int]:
    return int(IPv4Address(ip_range.start_ip)), int(IPv4Address(ip_range.end_ip))


async def free_ips(
    session: AsyncSession, msg: APIGetFreeIpMsg, auth: AuthContext
) -> list[FreeIpInventory]:
    if msg.ip_range_uuid is not None:
        await _require(session, "IP range", msg.ip_range_uuid, auth)
        ip_range = await session.get(IpRangeVO, msg.ip_range_uuid)
        if ip_range is None:
            raise ZError(SysErr.RESOURCE_NOT_FOUND, f"no IP range with uuid {msg.ip_range_uuid}")
        ranges = [ip_range]
    elif msg.l3_network_uuid is not None:
        await _require(session, "L3 network", msg.l3_network_uuid, auth)
        ranges = await _ranges_of_l3(session, msg.l3_network_uuid)
    else:
        raise ZError(SysErr.INVALID_ARGUMENT, "give l3NetworkUuid or ipRangeUuid")
    if msg.ip_version == 6:
        return []  # every range is IPv4
    if msg.ip_range_type is not None:
        ranges = [r for r in ranges if r.ip_range_type == msg.ip_range_type]
    start = int(parse_ipv4(msg.start, "start")) if msg.start else None
    found: list[FreeIpInventory] = []
    for ip_range in ranges:
        low, high = _bounds(ip_range)
        if start is not None:
            low = max(low, start)
        if low > high:
            continue
        for address in await free_addresses(
            session, ip_range.l3_network_uuid, low, high, msg.limit - len(found)
        ):
            found.append(
                FreeIpInventory(
                    ip_range_uuid=ip_range.uuid,
                    ip=str(IPv4Address(address)),
                    netmask=ip_range.netmask,
                    gateway=ip_range.gateway,
                )
            )
        if len(found) >= msg.limit:
            break
    return found


async def ip_availability(
    session: AsyncSession, msg: APICheckIpAvailabilityMsg, auth: AuthContext
) -> CheckIpAvailabilityReply:
    await _require(session, "L3 network", msg.l3_network_uuid, auth)
    address = int(parse_ipv4(msg.ip, "ip"))
    ip = str(IPv4Address(address))
    ranges = await _ranges_of_l3(session, msg.l3_network_uuid)
    if any(r.gateway == ip for r in ranges):
        return CheckIpAvailabilityReply(available=False, reason=f"{ip} is the gateway")
    inside = any(low <= address <= high for low, high in map(_bounds, ranges))
    if msg.ip_range_check and not inside:
        return CheckIpAvailabilityReply(
            available=False, reason=f"{ip} is in no IP range of the L3 network"
        )
    if await is_used(session, msg.l3_network_uuid, address):
        return CheckIpAvailabilityReply(available=False, reason=f"{ip} is already in use")
    return CheckIpAvailabilityReply(available=True)


async def ip_capacity(
    session: AsyncSession, msg: APIGetIpAddressCapacityMsg, auth: AuthContext
) -> GetIpAddressCapacityReply:
    """Per zone, L3 network or range (the first kind given), or all ranges."""
    stmt = select(IpRangeVO, L3NetworkVO.zone_uuid).join(
        L3NetworkVO, L3NetworkVO.uuid == IpRangeVO.l3_network_uuid
    )
    owners: list[str]
    if msg.zone_uuids:
        resource_type, owners = "ZoneVO", msg.zone_uuids
        stmt = stmt.where(L3NetworkVO.zone_uuid.in_(owners))
    elif msg.l3_network_uuids:
        resource_type, owners = "L3NetworkVO", msg.l3_network_uuids
        stmt = stmt.where(IpRangeVO.l3_network_uuid.in_(owners))
    elif msg.ip_range_uuids:
        resource_type, owners = "IpRangeVO", msg.ip_range_uuids
        stmt = stmt.where(IpRangeVO.uuid.in_(owners))
    elif msg.all:
        resource_type, owners = "All", []
        if not auth.is_admin:
            stmt = stmt.join(ResourceVO, ResourceVO.uuid == IpRangeVO.l3_network_uuid).where(
                ResourceVO.account_uuid == auth.account_uuid
            )
    else:
        raise ZError(
            SysErr.INVALID_ARGUMENT,
            "give zoneUuids, l3NetworkUuids or ipRangeUuids, or all=true",
        )
    owners = list(dict.fromkeys(owners))
    for uuid in owners:
        await _require(session, resource_type.removesuffix("VO"), uuid, auth)
    rows = list((await session.execute(stmt)).all())
    counts = await used_counts(session, [r.uuid for r, _ in rows])

    def key(ip_range: IpRangeVO, zone_uuid: str) -> str:
        return {
            "ZoneVO": zone_uuid,
            "L3NetworkVO": ip_range.l3_network_uuid,
            "IpRangeVO": ip_range.uuid,
        }.get(resource_type, "")

    per: dict[str, IpCapacityData] = {u: IpCapacityData(resource_uuid=u) for u in owners}
    for ip_range, zone_uuid in rows:
        low, high = _bounds(ip_range)
        _add(
            per.setdefault(key(ip_range, zone_uuid), IpCapacityData(resource_uuid="")),
            high - low + 1,
            counts.get(ip_range.uuid, 0),
        )
    total = IpCapacityData(resource_uuid="")
    for data in per.values():
        _add(total, data.total_capacity, data.used_ip_address_number)
    return GetIpAddressCapacityReply(
        **total.model_dump(exclude={"resource_uuid"}),
        resource_type=resource_type,
        capacity_data=[] if resource_type == "All" else list(_ordered(per, owners)),
    )


def _add(data: IpCapacityData, total: int, used: int) -> None:
    # Every range is IPv4 (AddIpRange refuses IPv6), so the v4 figures are the totals.
    data.total_capacity += total
    data.used_ip_address_number += used
    data.available_capacity = data.total_capacity - data.used_ip_address_number
    data.ipv4_total_capacity = data.total_capacity
    data.ipv4_used_ip_address_number = data.used_ip_address_number
    data.ipv4_available_capacity = data.available_capacity


def _ordered(per: dict[str, IpCapacityData], owners: Iterable[str]) -> Iterable[IpCapacityData]:
    return (per[u] for u in owners)
