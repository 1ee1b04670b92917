"""Primary storage in cascades (CascadeParticipant), mixed into its two services:

- a zone's storage is deleted with the zone (after its clusters detached it);
- a cluster's attachments are detached with the cluster (children named by ref id);
- a host's books of local storage go with the host (children named by host uuid).

Nothing here refuses: what uses storage (volumes) takes part in cascades itself.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import select

from zstackpy.core.cascade import CascadeChildren, DeleteMode
from zstackpy.services.primary_storage.messages import (
    PRIMARY_STORAGE_TYPE,
    DeletePrimaryStorageMsg,
    DetachPrimaryStorageMsg,
    ForgetHostCapacityMsg,
)
from zstackpy.services.primary_storage.models import (
    LocalStorageHostRefVO,
    PrimaryStorageClusterRefVO,
    PrimaryStorageVO,
)

if TYPE_CHECKING:
    from zstackpy.core.context import NodeContext

CLUSTER_REF_TYPE = "PrimaryStorageClusterRefVO"  # the cascade's name for an attachment
HOST_REF_TYPE = "LocalStorageHostRefVO"  # the cascade's name for a host's books
_ZONE_TYPE = "ZoneVO"
_CLUSTER_TYPE = "ClusterVO"
_HOST_TYPE = "HostVO"


class StorageCascade:
    """Zone -> primary storage, cluster -> attachment (the primary storage service)."""

    ctx: NodeContext

    async def cascade_children(
        self, parent_type: str, parent_uuids: tuple[str, ...]
    ) -> CascadeChildren | None:
        async with self.ctx.db.session() as session:
            if parent_type == _ZONE_TYPE:
                rows = await session.execute(
                    select(PrimaryStorageVO.uuid).where(
                        PrimaryStorageVO.zone_uuid.in_(parent_uuids)
                    )
                )
                return CascadeChildren(PRIMARY_STORAGE_TYPE, tuple(rows.scalars()))
            if parent_type == _CLUSTER_TYPE:
                ref = PrimaryStorageClusterRefVO
                rows = await session.execute(
                    select(ref.id).where(ref.cluster_uuid.in_(parent_uuids))
                )
                return CascadeChildren(CLUSTER_REF_TYPE, tuple(str(i) for i in rows.scalars()))
        return None

    async def cascade_check(self, children: CascadeChildren) -> None:
        """Storage and attachments never refuse: what uses them (volumes) refuses itself."""

    async def cascade_delete(self, children: CascadeChildren, mode: DeleteMode) -> None:
        msgs: list[DeletePrimaryStorageMsg] | list[DetachPrimaryStorageMsg]
        if children.resource_type == PRIMARY_STORAGE_TYPE:
            msgs = [DeletePrimaryStorageMsg(uuid=u, delete_mode=mode.value) for u in children.uuids]
        else:
            ref = PrimaryStorageClusterRefVO
            async with self.ctx.db.session() as session:
                rows = await session.execute(
                    select(ref.primary_storage_uuid, ref.cluster_uuid).where(
                        ref.id.in_([int(i) for i in children.uuids])
                    )
                )
                msgs = [
                    DetachPrimaryStorageMsg(primary_storage_uuid=p, cluster_uuid=c) for p, c in rows
                ]
        for reply in await self.ctx.bus.call_many(msgs, parallelism=8):
            reply.raise_if_error()


class HostBooksCascade:
    """Host -> its books in local storage (the capacity service)."""

    ctx: NodeContext

    async def cascade_children(
        self, parent_type: str, parent_uuids: tuple[str, ...]
    ) -> CascadeChildren | None:
        if parent_type != _HOST_TYPE:
            return None
        async with self.ctx.db.session() as session:
            rows = await session.execute(
                select(LocalStorageHostRefVO.host_uuid)
                .where(LocalStorageHostRefVO.host_uuid.in_(parent_uuids))
                .distinct()
            )
            # Children named by their host: a host's books in every storage go together.
            return CascadeChildren(HOST_REF_TYPE, tuple(rows.scalars()))

    async def cascade_check(self, children: CascadeChildren) -> None:
        """A host's books never refuse: what uses its disk (volumes) refuses on its own."""

    async def cascade_delete(self, children: CascadeChildren, mode: DeleteMode) -> None:
        async with self.ctx.db.session() as session:
            rows = await session.execute(
                select(
                    LocalStorageHostRefVO.primary_storage_uuid, LocalStorageHostRefVO.host_uuid
                ).where(LocalStorageHostRefVO.host_uuid.in_(children.uuids))
            )
            by_storage: dict[str, list[str]] = {}
            for ps_uuid, host_uuid in rows:
                by_storage.setdefault(ps_uuid, []).append(host_uuid)
        replies = await self.ctx.bus.call_many(
            [
                ForgetHostCapacityMsg(primary_storage_uuid=p, host_uuids=h)
                for p, h in by_storage.items()
            ],
            parallelism=8,
        )
        for reply in replies:
            reply.raise_if_error()
