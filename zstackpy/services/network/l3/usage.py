"""Whether addresses of L3 networks or ranges are in use: what refuses their delete."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from zstackpy.core.errors import ZError
from zstackpy.services.network.errors import L3Err
from zstackpy.services.network.messages import USED_FOR_DHCP_SERVER
from zstackpy.services.network.models import UsedIpVO

_EXAMPLES = 5  # addresses named in the error; the count says how many there are


async def refuse_if_in_use(
    session: AsyncSession,
    what: str,
    *,
    l3_uuids: Sequence[str] = (),
    range_uuids: Sequence[str] = (),
    ignore_vm_nics: bool = False,
) -> None:
    """Raise L3.1002 when any address of these L3 networks or ranges is allocated;
    ``what`` names the thing being deleted in the message. ``ignore_vm_nics``: addresses
    held by VM NICs do not count (a parent's cascade detaches those NICs first, as ZStack
    does when a zone or L2 network goes). A network service's own address (the DHCP
    server's) never counts: it goes with its range or network."""
    where: ColumnElement[bool]
    if l3_uuids:
        where = UsedIpVO.l3_network_uuid.in_(l3_uuids)
    elif range_uuids:
        where = UsedIpVO.ip_range_uuid.in_(range_uuids)
    else:
        return
    where = where & UsedIpVO.used_for.is_distinct_from(USED_FOR_DHCP_SERVER)
    if ignore_vm_nics:
        where = where & UsedIpVO.vm_nic_uuid.is_(None)
    count = (
        await session.execute(select(func.count()).select_from(UsedIpVO).where(where))
    ).scalar_one()
    if not count:
        return
    rows = await session.execute(
        select(UsedIpVO.ip, UsedIpVO.vm_nic_uuid, UsedIpVO.used_for)
        .where(where)
        .order_by(UsedIpVO.ip_in_long)
        .limit(_EXAMPLES)
    )
    examples = [
        {"ip": ip, "vmNicUuid": nic, "usedFor": used_for} for ip, nic, used_for in rows.all()
    ]
    shown = ", ".join(e["ip"] or "" for e in examples)
    raise ZError(
        L3Err.IP_IN_USE,
        f"cannot delete {what}: {count} of its IP addresses are in use ({shown}"
        f"{', ...' if count > len(examples) else ''}); release them first or delete "
        "with deleteMode=Enforcing",
        used_ip_count=count,
        used_ips=examples,
    )
