"""Ownership: every resource has a ResourceVO row naming its type, name and owner account."""

from __future__ import annotations

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from zstackpy.api.messages import AuthContext
from zstackpy.core.db import ResourceVO


def add_resource(
    session: AsyncSession,
    *,
    uuid: str,
    resource_type: str,
    name: str | None,
    auth: AuthContext | None,
) -> None:
    """Record a new resource in the caller's transaction, owned by the caller's account
    (no account for what sessionless APIs create: only the admin sees those)."""
    session.add(
        ResourceVO(
            uuid=uuid,
            resource_type=resource_type,
            resource_name=name,
            account_uuid=auth.account_uuid if auth else None,
        )
    )


async def rename_resource(session: AsyncSession, uuid: str, name: str) -> None:
    await session.execute(
        update(ResourceVO).where(ResourceVO.uuid == uuid).values(resource_name=name)
    )


async def remove_resources(session: AsyncSession, uuids: list[str]) -> None:
    if uuids:
        await session.execute(delete(ResourceVO).where(ResourceVO.uuid.in_(uuids)))


async def may_use(session: AsyncSession, uuid: str, auth: AuthContext) -> bool:
    """True when ``auth`` may see and use resource ``uuid``: the admin may use any existing
    resource, a normal account only its own. A missing resource is never usable."""
    owner = (
        await session.execute(
            select(ResourceVO.uuid, ResourceVO.account_uuid).where(ResourceVO.uuid == uuid)
        )
    ).one_or_none()
    return owner is not None and (auth.is_admin or owner.account_uuid == auth.account_uuid)
