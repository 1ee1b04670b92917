"""Security groups and their rules over the API. Each change runs in the group's queue and
reaches the hosts through ``changes.change`` (undone when a host refuses)."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from zstackpy.api.messages import AuthContext
from zstackpy.api.ownership import add_resource
from zstackpy.core.errors import SysErr, ZError
from zstackpy.core.service import handles
from zstackpy.services.networkservice.access import require_usable
from zstackpy.services.resource_service import ResourceService
from zstackpy.services.securitygroup.api import (
    APIAddSecurityGroupRuleMsg,
    APIChangeSecurityGroupStateMsg,
    APICreateSecurityGroupMsg,
    APIDeleteSecurityGroupMsg,
    APIDeleteSecurityGroupRuleMsg,
    APIUpdateSecurityGroupMsg,
    SecurityGroupEvent,
)
from zstackpy.services.securitygroup.changes import (
    Edit,
    answer,
    change,
    columns,
    new_uuid,
    require_group,
    sg_queue,
)
from zstackpy.services.securitygroup.messages import (
    SECURITY_GROUP_SERVICE,
)
from zstackpy.services.securitygroup.models import (
    SecurityGroupL3NetworkRefVO,
    SecurityGroupRuleVO,
    SecurityGroupVO,
    VmNicSecurityGroupRefVO,
)
from zstackpy.services.securitygroup.query import (
    GROUP_LOAD_OPTIONS,
    SecurityGroupInventory,
)
from zstackpy.services.securitygroup.rules import expand

log = logging.getLogger(__name__)

SG_TYPE = "SecurityGroupVO"


class SecurityGroupService(ResourceService):
    name = SECURITY_GROUP_SERVICE
    model = SecurityGroupVO
    inventory = SecurityGroupInventory
    resource_type = SG_TYPE
    noun = "security group"

    # ----- create, delete --------------------------------------------------------------

    @handles(APICreateSecurityGroupMsg)
    async def create(self, msg: APICreateSecurityGroupMsg) -> SecurityGroupEvent:
        assert msg.resource_uuid is not None  # the portal gives every create its UUID
        uuid = msg.resource_uuid

        async def run() -> SecurityGroupEvent:
            auth = msg.require_auth()
            async with self.ctx.db.session() as session, session.begin():
                await self.refuse_duplicate(session, uuid)
                session.add(
                    SecurityGroupVO(
                        uuid=uuid,
                        name=msg.name,
                        description=msg.description,
                        state="Enabled",
                        ip_version=msg.ip_version,
                    )
                )
                add_resource(session, uuid=uuid, resource_type=SG_TYPE, name=msg.name, auth=auth)
            return SecurityGroupEvent(inventory=await answer(self.ctx, uuid, "created", auth))

        return await self.ctx.queues.run(sg_queue(uuid), run)

    @handles(APIDeleteSecurityGroupMsg)
    async def delete_group(self, msg: APIDeleteSecurityGroupMsg) -> SecurityGroupEvent:
        async def run() -> SecurityGroupEvent:
            await self._delete_group(msg.uuid, msg.require_auth())
            return SecurityGroupEvent()

        return await self.ctx.queues.run(sg_queue(msg.uuid), run)

    async def _delete_group(self, uuid: str, auth: AuthContext | None) -> None:
        """Members, L3 attachments, rules (and other groups' rules naming it as peer) go
        first and leave the hosts; the group's row goes once the hosts agreed."""
        async with self.ctx.db.session() as session:
            await self.require(session, uuid)
            saved: list[tuple[type[Any], list[dict[str, Any]]]] = []
            for model, where in (
                (VmNicSecurityGroupRefVO, VmNicSecurityGroupRefVO.security_group_uuid == uuid),
                (
                    SecurityGroupL3NetworkRefVO,
                    SecurityGroupL3NetworkRefVO.security_group_uuid == uuid,
                ),
                (
                    SecurityGroupRuleVO,
                    (SecurityGroupRuleVO.security_group_uuid == uuid)
                    | (SecurityGroupRuleVO.remote_security_group_uuid == uuid),
                ),
            ):
                rows = (await session.execute(select(model).where(where))).scalars()
                saved.append((model, [columns(r) for r in rows]))

        async def remove(session: AsyncSession) -> None:
            for model, rows in saved:
                if rows:
                    await session.execute(
                        delete(model).where(model.uuid.in_([r["uuid"] for r in rows]))
                    )

        async def restore(session: AsyncSession) -> None:
            # Rules last: a rule naming a peer needs nothing, members need the group row.
            for model, rows in saved:
                if rows:
                    await session.execute(insert(model), rows)

        await change(self.ctx, [uuid], remove, restore)
        await self.remove([uuid], auth)

    # ----- rules ---------------------------------------------------------------------------

    @handles(APIAddSecurityGroupRuleMsg)
    async def add_rules(self, msg: APIAddSecurityGroupRuleMsg) -> SecurityGroupEvent:
        return await self.ctx.queues.run(sg_queue(msg.security_group_uuid), self._add_rules, msg)

    async def _add_rules(self, msg: APIAddSecurityGroupRuleMsg) -> SecurityGroupEvent:
        uuid = msg.security_group_uuid
        peers = set(msg.remote_security_group_uuids) | {
            r.remote_security_group_uuid for r in msg.rules if r.remote_security_group_uuid
        }
        await require_usable(self.ctx, msg.require_auth(), peers, "security group")
        async with self.ctx.db.session() as session:
            group = (
                await session.execute(
                    select(SecurityGroupVO)
                    .options(*GROUP_LOAD_OPTIONS)
                    .where(SecurityGroupVO.uuid == uuid)
                )
            ).scalar_one_or_none()
            if group is None:
                raise ZError(
                    SysErr.RESOURCE_NOT_FOUND, f"no security group with uuid {uuid}", uuid=uuid
                )
            if peers:
                found = set(
                    (
                        await session.execute(
                            select(SecurityGroupVO.uuid).where(SecurityGroupVO.uuid.in_(peers))
                        )
                    ).scalars()
                )
                missing = sorted(peers - found)
                if missing:
                    raise ZError(
                        SysErr.RESOURCE_NOT_FOUND,
                        f"no security group with uuid {', '.join(missing)}",
                        uuids=missing,
                    )
            top = await session.scalar(
                select(func.max(SecurityGroupRuleVO.priority)).where(
                    SecurityGroupRuleVO.security_group_uuid == uuid
                )
            )
        existing = {
            (
                r.type,
                r.protocol,
                r.start_port,
                r.end_port,
                r.allowed_cidr,
                r.remote_security_group_uuid,
                r.action,
            )
            for r in group.rules
        }
        specs = expand(msg.rules, msg.remote_security_group_uuids, existing)
        first = msg.priority if msg.priority is not None else (top or 0) + 1
        rows = [
            {
                "uuid": new_uuid(),
                "security_group_uuid": uuid,
                "type": s.type,
                "ip_version": 4,
                "protocol": s.protocol,
                "state": "Enabled",
                "priority": first + i,
                "description": s.description,
                "action": s.action,
                "allowed_cidr": s.allowed_cidr,
                "remote_security_group_uuid": s.remote_security_group_uuid,
                "start_port": s.start_port,
                "end_port": s.end_port,
            }
            for i, s in enumerate(specs)
        ]
        new = [r["uuid"] for r in rows]

        async def add(session: AsyncSession) -> None:
            await session.execute(insert(SecurityGroupRuleVO), rows)

        async def take_back(session: AsyncSession) -> None:
            await session.execute(
                delete(SecurityGroupRuleVO).where(SecurityGroupRuleVO.uuid.in_(new))
            )

        await change(self.ctx, [uuid], add, take_back)
        auth = msg.require_auth()
        return SecurityGroupEvent(inventory=await answer(self.ctx, uuid, "updated", auth))

    @handles(APIDeleteSecurityGroupRuleMsg)
    async def delete_rules(self, msg: APIDeleteSecurityGroupRuleMsg) -> SecurityGroupEvent:
        async with self.ctx.db.session() as session:
            groups = sorted(
                set(
                    (
                        await session.execute(
                            select(SecurityGroupRuleVO.security_group_uuid).where(
                                SecurityGroupRuleVO.uuid.in_(msg.rule_uuids)
                            )
                        )
                    ).scalars()
                )
            )
        if not groups:
            return SecurityGroupEvent()  # rules already gone: nothing to do
        if len(groups) > 1:
            raise ZError(
                SysErr.INVALID_ARGUMENT,
                "the rules belong to several security groups: delete them group by group",
                securityGroupUuids=groups,
            )
        (group,) = groups

        async def run() -> SecurityGroupEvent:
            async with self.ctx.db.session() as session:
                saved = [
                    columns(r)
                    for r in (
                        await session.execute(
                            select(SecurityGroupRuleVO).where(
                                SecurityGroupRuleVO.uuid.in_(msg.rule_uuids)
                            )
                        )
                    ).scalars()
                ]

            async def remove(session: AsyncSession) -> None:
                await session.execute(
                    delete(SecurityGroupRuleVO).where(
                        SecurityGroupRuleVO.uuid.in_([r["uuid"] for r in saved])
                    )
                )

            async def restore(session: AsyncSession) -> None:
                if saved:
                    await session.execute(insert(SecurityGroupRuleVO), saved)

            await change(self.ctx, [group], remove, restore)
            auth = msg.require_auth()
            return SecurityGroupEvent(inventory=await answer(self.ctx, group, "updated", auth))

        return await self.ctx.queues.run(sg_queue(group), run)

    # ----- name, state ---------------------------------------------------------------------

    @handles(APIUpdateSecurityGroupMsg)
    async def update(self, msg: APIUpdateSecurityGroupMsg) -> SecurityGroupEvent:
        async def run() -> SecurityGroupEvent:
            changes = msg.model_dump(
                include={"name", "description"}, exclude_none=True, by_alias=False
            )
            await self.update_fields(msg.uuid, changes)
            return SecurityGroupEvent(
                inventory=await answer(self.ctx, msg.uuid, "updated", msg.require_auth())
            )

        return await self.ctx.queues.run(sg_queue(msg.uuid), run)

    @handles(APIChangeSecurityGroupStateMsg)
    async def change_group_state(self, msg: APIChangeSecurityGroupStateMsg) -> SecurityGroupEvent:
        """A disabled group's rules leave every host; enabling puts them back."""

        async def run() -> SecurityGroupEvent:
            state = "Enabled" if msg.state_event == "enable" else "Disabled"
            async with self.ctx.db.session() as session:
                old = (await require_group(session, msg.uuid)).state

            def to(value: str) -> Edit:
                async def edit(session: AsyncSession) -> None:
                    await session.execute(
                        update(SecurityGroupVO)
                        .where(SecurityGroupVO.uuid == msg.uuid)
                        .values(state=value)
                    )

                return edit

            if old != state:
                await change(self.ctx, [msg.uuid], to(state), to(old))
            return SecurityGroupEvent(
                inventory=await answer(self.ctx, msg.uuid, "updated", msg.require_auth())
            )

        return await self.ctx.queues.run(sg_queue(msg.uuid), run)
