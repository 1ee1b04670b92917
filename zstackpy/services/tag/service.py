"""Tag handlers, and the tags' part in cascades: a deleted resource takes its tags along."""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from zstackpy.api.messages import AuthContext
from zstackpy.api.ownership import add_resource, may_use, remove_resources
from zstackpy.core.bus.message import Reply
from zstackpy.core.cascade import CascadeChildren, DeleteMode
from zstackpy.core.db import ResourceVO
from zstackpy.core.errors import SysErr, ZError
from zstackpy.core.ids import new_uuid
from zstackpy.core.service import Service, handles
from zstackpy.services.tag.messages import (
    TAG_SERVICE,
    APICreateSystemTagMsg,
    APICreateUserTagMsg,
    APIDeleteTagMsg,
    ApplyTagsMsg,
    SystemTagInventory,
    TagEvent,
    TagInventory,
)
from zstackpy.services.tag.models import SystemTagVO, UserTagVO
from zstackpy.services.tag.patterns import TagPattern, check_system_tags, check_user_tags

TAGS_TYPE = "TagVO"  # the cascade's name for both tag tables


class TagService(Service):
    name = TAG_SERVICE

    @property
    def patterns(self) -> list[TagPattern]:
        return self.ctx.plugins.system_tag_patterns

    @handles(APICreateSystemTagMsg)
    async def create_system_tag(self, msg: APICreateSystemTagMsg) -> TagEvent:
        check_system_tags(self.patterns, msg.resource_type, [msg.tag])
        return await self._create(msg, SystemTagVO)

    @handles(APICreateUserTagMsg)
    async def create_user_tag(self, msg: APICreateUserTagMsg) -> TagEvent:
        check_user_tags([msg.tag])
        return await self._create(msg, UserTagVO)

    async def _create(
        self, msg: APICreateSystemTagMsg | APICreateUserTagMsg, table: type[SystemTagVO | UserTagVO]
    ) -> TagEvent:
        auth = msg.require_auth()
        uuid = new_uuid()
        async with self.ctx.db.session() as session, session.begin():
            await self._require_taggable(session, msg.resource_uuid, msg.resource_type, auth)
            row = table(
                uuid=uuid,
                resource_uuid=msg.resource_uuid,
                resource_type=msg.resource_type,
                tag=msg.tag,
            )
            session.add(row)
            add_resource(session, uuid=uuid, resource_type=table.__name__, name=None, auth=auth)
        async with self.ctx.db.session() as session:
            created = await session.get(table, uuid)
        inventory_type = SystemTagInventory if table is SystemTagVO else TagInventory
        return TagEvent(inventory=inventory_type.model_validate(created, from_attributes=True))

    async def _require_taggable(
        self, session: AsyncSession, uuid: str, resource_type: str, auth: AuthContext
    ) -> None:
        actual = (
            await session.execute(select(ResourceVO.resource_type).where(ResourceVO.uuid == uuid))
        ).scalar_one_or_none()
        if actual is None or not await may_use(session, uuid, auth):
            raise ZError(SysErr.RESOURCE_NOT_FOUND, f"no resource with uuid {uuid}", uuid=uuid)
        if actual != resource_type:
            raise ZError(
                SysErr.INVALID_ARGUMENT,
                f"resource {uuid} is a {actual}, not a {resource_type}",
                resourceType=resource_type,
                actual=actual,
            )

    @handles(APIDeleteTagMsg)
    async def delete_tag(self, msg: APIDeleteTagMsg) -> TagEvent:
        auth = msg.require_auth()
        async with self.ctx.db.session() as session, session.begin():
            if not await may_use(session, msg.uuid, auth):
                raise ZError(
                    SysErr.RESOURCE_NOT_FOUND, f"no tag with uuid {msg.uuid}", uuid=msg.uuid
                )
            for table in (SystemTagVO, UserTagVO):
                await session.execute(delete(table).where(table.uuid == msg.uuid))
            await remove_resources(session, [msg.uuid])
        return TagEvent()

    @handles(ApplyTagsMsg)
    async def apply(self, msg: ApplyTagsMsg) -> Reply:
        async with self.ctx.db.session() as session, session.begin():
            for tags, table in ((msg.system_tags, SystemTagVO), (msg.user_tags, UserTagVO)):
                for tag in tags:
                    uuid = new_uuid()
                    session.add(
                        table(
                            uuid=uuid,
                            resource_uuid=msg.resource_uuid,
                            resource_type=msg.resource_type,
                            tag=tag,
                        )
                    )
                    add_resource(
                        session, uuid=uuid, resource_type=table.__name__, name=None, auth=msg.auth
                    )
        return Reply()

    # ----- CascadeParticipant: any resource's tags go with it ---------------------------

    async def cascade_children(
        self, parent_type: str, parent_uuids: tuple[str, ...]
    ) -> CascadeChildren | None:
        if parent_type == TAGS_TYPE:
            return None
        uuids: list[str] = []
        async with self.ctx.db.session() as session:
            for table in (SystemTagVO, UserTagVO):
                rows = await session.execute(
                    select(table.uuid).where(table.resource_uuid.in_(parent_uuids))
                )
                uuids.extend(rows.scalars())
        return CascadeChildren(TAGS_TYPE, tuple(uuids))

    async def cascade_check(self, children: CascadeChildren) -> None:
        """Tags never refuse to go."""

    async def cascade_delete(self, children: CascadeChildren, mode: DeleteMode) -> None:
        uuids = list(children.uuids)
        async with self.ctx.db.session() as session, session.begin():
            for table in (SystemTagVO, UserTagVO):
                await session.execute(delete(table).where(table.uuid.in_(uuids)))
            await remove_resources(session, uuids)
