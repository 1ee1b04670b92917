"""What every security-group change shares: the queues, the change protocol (database,
then hosts, undone together when a host refuses) and the answer with its event.

Every change of a group runs in its queue (``sg:<uuid>``) on its owner node, whichever
service (groups and rules, members and attachments) handles it. Every host whose rule set
depends on the group is then sent its whole set again (at most ``PUSH_PARALLELISM`` at a
time); should one refuse, the database change is undone, the hosts are sent their sets
again, and the host's error is raised: the group is as it was before the request.
"""

from __future__ import annotations

import logging
import uuid as uuid_mod
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from zstackpy.api.events import ResourceChangedEvent
from zstackpy.api.messages import AuthContext
from zstackpy.core.context import NodeContext
from zstackpy.core.errors import SysErr, ZError
from zstackpy.core.workqueue import QueueKey
from zstackpy.services.host.messages import HostErr
from zstackpy.services.securitygroup import hosts
from zstackpy.services.securitygroup.messages import (
    RefreshSecurityGroupHostMsg,
)
from zstackpy.services.securitygroup.models import (
    SecurityGroupVO,
)
from zstackpy.services.securitygroup.query import (
    GROUP_LOAD_OPTIONS,
    SecurityGroupInventory,
    group_inventory,
)

log = logging.getLogger(__name__)

SG_TYPE = "SecurityGroupVO"
# Hosts refreshed at once by one change.
PUSH_PARALLELISM = 8

Edit = Callable[[AsyncSession], Awaitable[None]]


def sg_queue(uuid: str) -> QueueKey:
    return QueueKey("securityGroup", uuid)


def host_queue(uuid: str) -> QueueKey:
    return QueueKey("sg-host", uuid)


def new_uuid() -> str:
    return uuid_mod.uuid4().hex


def columns(row: Any) -> dict[str, Any]:
    """A row's values, to put it back as it was."""
    return {c.key: getattr(row, c.key) for c in row.__table__.columns}


async def require_group(session: AsyncSession, uuid: str) -> SecurityGroupVO:
    row = await session.get(SecurityGroupVO, uuid)
    if row is None:
        raise ZError(SysErr.RESOURCE_NOT_FOUND, f"no security group with uuid {uuid}", uuid=uuid)
    return row


async def change(ctx: NodeContext, groups: list[str], edit: Edit, undo: Edit) -> None:
    before = await hosts.hosts_of_groups(ctx, groups)
    async with ctx.db.session() as session, session.begin():
        await edit(session)
    touched = before | await hosts.hosts_of_groups(ctx, groups)
    try:
        await push(ctx, touched)
    except BaseException:
        async with ctx.db.session() as session, session.begin():
            await undo(session)
        try:
            await push(ctx, touched)  # the hosts that took the change get it back
        except ZError as exc:
            log.warning("security groups %s: restoring hosts failed: %s", groups, exc)
        raise


async def push(ctx: NodeContext, host_uuids: set[str]) -> None:
    """Refresh every host; the first refusal is raised once all have answered. A host
    that is not Connected is no refusal: it gets its whole set when it reconnects."""
    if not host_uuids:
        return
    ordered = sorted(host_uuids)
    replies = await ctx.bus.call_many(
        [RefreshSecurityGroupHostMsg(host_uuid=h) for h in ordered],
        parallelism=PUSH_PARALLELISM,
    )
    for host_uuid, reply in zip(ordered, replies, strict=True):
        if reply.error is not None and reply.error.code == HostErr.WRONG_STATE:
            log.info("security groups: host %s is not Connected; its reconnect will", host_uuid)
            continue
        reply.raise_if_error()


async def answer(
    ctx: NodeContext, uuid: str, what: Any, auth: AuthContext
) -> SecurityGroupInventory:
    """The group's inventory, after telling every subscriber what changed."""
    async with ctx.db.session() as session:
        row = (
            await session.execute(
                select(SecurityGroupVO)
                .options(*GROUP_LOAD_OPTIONS)
                .where(SecurityGroupVO.uuid == uuid)
            )
        ).scalar_one_or_none()
    if row is None:
        raise ZError(SysErr.RESOURCE_NOT_FOUND, f"no security group with uuid {uuid}", uuid=uuid)
    inventory = group_inventory(row)
    await ctx.bus.publish(
        ResourceChangedEvent(
            resource_type=SG_TYPE,
            resource_uuid=uuid,
            change=what,
            account_uuid=auth.account_uuid,
            inventory=inventory.model_dump(mode="json", by_alias=True),
        )
    )
    return inventory
