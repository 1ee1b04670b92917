"""Reading and changing host rows the way every host code path must: status changes are
announced (HostStatusChangedEvent + ResourceChangedEvent), inventories never carry secrets,
and a host's hypervisor backend is looked up by its type.

Functions here run inside the host's work queue when they change a row; they do not queue
themselves (the callers hold the queue).
"""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from zstackpy.api.events import ResourceChangedEvent
from zstackpy.core.context import NodeContext
from zstackpy.core.errors import SysErr, ZError
from zstackpy.core.workqueue import QueueKey
from zstackpy.services.host.extensions import HypervisorBackend
from zstackpy.services.host.messages import (
    HOST_RESOURCE_TYPE,
    HostErr,
    HostInventory,
    HostStatusChangedEvent,
    HostSummary,
)
from zstackpy.services.host.models import HostVO
from zstackpy.services.resource_service import Change

HOST_QUEUE = "host"


def host_queue(host_uuid: str) -> QueueKey:
    """The queue every change of one host runs in (state, status, capacity, connect)."""
    return QueueKey(HOST_QUEUE, host_uuid)


def host_not_found(host_uuid: str) -> ZError:
    return ZError(SysErr.RESOURCE_NOT_FOUND, f"no host with uuid {host_uuid}", uuid=host_uuid)


async def require_host(session: AsyncSession, host_uuid: str) -> HostVO:
    row = await session.get(HostVO, host_uuid)
    if row is None:
        raise host_not_found(host_uuid)
    return row


async def load_hosts(ctx: NodeContext, host_uuids: list[str]) -> dict[str, HostVO]:
    """The rows of those of ``host_uuids`` that exist (with their hypervisor's columns)."""
    async with ctx.db.read_session() as session:
        rows = (await session.execute(select(HostVO).where(HostVO.uuid.in_(host_uuids)))).scalars()
        return {row.uuid: row for row in rows}


async def load_host(ctx: NodeContext, host_uuid: str) -> HostVO:
    """The host row (with its hypervisor's columns); SYS.1003 if it does not exist."""
    async with ctx.db.read_session() as session:
        return await require_host(session, host_uuid)


def to_inventory(row: HostVO) -> HostInventory:
    # from_attributes reads only the inventory's fields: password and token stay behind.
    return HostInventory.model_validate(row, from_attributes=True)


def to_summary(row: HostVO) -> HostSummary:
    return HostSummary.model_validate(row, from_attributes=True)


def backend_for(ctx: NodeContext, hypervisor_type: str) -> HypervisorBackend:
    for backend in ctx.plugins.extensions(HypervisorBackend):
        if backend.hypervisor_type() == hypervisor_type:
            return backend
    raise ZError(
        SysErr.NO_CAPABILITY,
        f"no plugin drives {hypervisor_type} hosts",
        hypervisorType=hypervisor_type,
    )


async def publish_changed(
    ctx: NodeContext, host_uuid: str, change: Change = "updated", account_uuid: str | None = None
) -> HostInventory | None:
    """Announce the host's current row to event-stream followers; answers its inventory
    (None when the row is gone)."""
    async with ctx.db.session() as session:
        row = await session.get(HostVO, host_uuid)
        inventory = to_inventory(row) if row is not None else None
    await ctx.bus.publish(
        ResourceChangedEvent(
            resource_type=HOST_RESOURCE_TYPE,
            resource_uuid=host_uuid,
            change="deleted" if inventory is None else change,
            account_uuid=account_uuid,
            inventory=inventory.model_dump(mode="json", by_alias=True) if inventory else None,
        )
    )
    return inventory


async def set_status(
    ctx: NodeContext, host_uuid: str, status: str, reason: str = "", *, is_new: bool = False
) -> str:
    """Change the host's status and announce it when it changed; answers the old status
    ("" when the host no longer exists, which is not an error: a delete may have won).
    ``is_new``: the host's "created" event is still to come and will show the status, so
    only HostStatusChangedEvent goes out now."""
    async with ctx.db.session() as session, session.begin():
        old = (
            await session.execute(select(HostVO.status).where(HostVO.uuid == host_uuid))
        ).scalar_one_or_none()
        if old is None:
            return ""
        if old != status:
            await session.execute(
                update(HostVO).where(HostVO.uuid == host_uuid).values(status=status)
            )
    if old != status:
        await ctx.bus.publish(
            HostStatusChangedEvent(
                host_uuid=host_uuid, old_status=old, new_status=status, reason=reason
            )
        )
        if not is_new:
            await publish_changed(ctx, host_uuid)
    return old


def duplicate_ip(ip: str) -> ZError:
    return ZError(
        HostErr.DUPLICATE_MANAGEMENT_IP,
        f"a host with management IP {ip} already exists",
        managementIp=ip,
    )


async def refuse_duplicate_ip(session: AsyncSession, ip: str, *, except_uuid: str = "") -> None:
    """HOST.1001 when a host other than ``except_uuid`` has management IP ``ip``."""
    taken = (
        await session.execute(
            select(HostVO.uuid).where(HostVO.management_ip == ip, HostVO.uuid != except_uuid)
        )
    ).first()
    if taken is not None:
        raise duplicate_ip(ip)
