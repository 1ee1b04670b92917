"""Primary storage handlers: create, update, state, attach/detach, reconnect, delete.

Every change of a storage runs in its lifecycle queue (``primary-storage:<uuid>``); its
capacity books have a queue of their own (``capacity.py``). The service also takes part
in cascades (a zone's storage, a cluster's attachments) and prepares storage on hosts
that connect (HostConnectExtension).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from zstackpy.api.messages import AuthContext, Inventory
from zstackpy.api.ownership import add_resource, may_use
from zstackpy.core.bus.message import Message, Reply
from zstackpy.core.errors import SysErr, ZError
from zstackpy.core.service import handles
from zstackpy.core.workqueue import QueueKey
from zstackpy.services.cluster.models import ClusterVO
from zstackpy.services.host.extensions import ConnectingHost
from zstackpy.services.primary_storage.backends import backend_for
from zstackpy.services.primary_storage.cascade import StorageCascade
from zstackpy.services.primary_storage.extensions import (
    PrimaryStorageDetachExtension,
    PrimaryStorageDetachRequest,
)
from zstackpy.services.primary_storage.flows import (
    ATTACH_CHAIN,
    AttachPrimaryStorageCtx,
    StorageView,
    book,
    cluster_hosts,
    connect_hosts,
    disconnect_hosts,
    forget,
    prepare_failed,
)
from zstackpy.services.primary_storage.host_hooks import prepare_connecting_host
from zstackpy.services.primary_storage.messages import (
    PRIMARY_STORAGE_SERVICE,
    PRIMARY_STORAGE_TYPE,
    APIAddPrimaryStorageMsg,
    APIAttachPrimaryStorageToClusterMsg,
    APIChangePrimaryStorageStateMsg,
    APIDeletePrimaryStorageMsg,
    APIDetachPrimaryStorageFromClusterMsg,
    APIReconnectPrimaryStorageMsg,
    APIUpdatePrimaryStorageMsg,
    DeletePrimaryStorageMsg,
    DetachPrimaryStorageMsg,
    PrimaryStorageErr,
    PrimaryStorageEvent,
    PrimaryStorageInventory,
    PrimaryStorageState,
    PrimaryStorageStatus,
)
from zstackpy.services.primary_storage.models import (
    LocalStorageHostRefVO,
    PrimaryStorageClusterRefVO,
    PrimaryStorageVO,
)
from zstackpy.services.primary_storage.queries import LOAD_CLUSTER_REFS
from zstackpy.services.resource_service import Change, ResourceService
from zstackpy.services.zone.models import ZoneVO

_STATES = {
    "enable": PrimaryStorageState.ENABLED,
    "disable": PrimaryStorageState.DISABLED,
    "maintain": PrimaryStorageState.MAINTENANCE,
}


def lifecycle_queue(uuid: str) -> QueueKey:
    return QueueKey("primary-storage", uuid)


class PrimaryStorageService(StorageCascade, ResourceService):
    """The APIs of every storage type, the zone/cluster cascade (StorageCascade) and the
    HostConnectExtension."""

    name = PRIMARY_STORAGE_SERVICE
    model = PrimaryStorageVO
    inventory = PrimaryStorageInventory
    resource_type = PRIMARY_STORAGE_TYPE
    noun = "primary storage"

    async def handle(self, msg: Message) -> Reply | None:
        # Every type's Add API is a subclass declared by its plugin: one generic create.
        if isinstance(msg, APIAddPrimaryStorageMsg):
            assert msg.resource_uuid is not None  # the portal gives every create its UUID
            return await self.ctx.queues.run(lifecycle_queue(msg.resource_uuid), self._add, msg)
        return await super().handle(msg)

    async def _add(self, msg: APIAddPrimaryStorageMsg) -> PrimaryStorageEvent:
        uuid, auth = msg.resource_uuid, msg.require_auth()
        assert uuid is not None
        backend = backend_for(self.ctx, msg.storage_type)
        url = backend.check_url(msg.url)
        mount_path = backend.mount_path(uuid, url, msg.requested_mount_path())
        async with self.ctx.db.session() as session, session.begin():
            await self.refuse_duplicate(session, uuid)
            # A zone row without its ResourceVO cannot exist, so may_use covers both checks.
            if await session.get(ZoneVO, msg.zone_uuid) is None or not await may_use(
                session, msg.zone_uuid, auth
            ):
                raise ZError(
                    SysErr.RESOURCE_NOT_FOUND,
                    f"no zone with uuid {msg.zone_uuid}",
                    uuid=msg.zone_uuid,
                )
            session.add(
                PrimaryStorageVO(
                    uuid=uuid,
                    zone_uuid=msg.zone_uuid,
                    name=msg.name,
                    description=msg.description,
                    url=url,
                    type=msg.storage_type,
                    state=PrimaryStorageState.ENABLED,
                    # Nothing to reach until a cluster is attached: the hosts do the work.
                    status=PrimaryStorageStatus.CONNECTED,
                    mount_path=mount_path,
                )
            )
            add_resource(
                session, uuid=uuid, resource_type=PRIMARY_STORAGE_TYPE, name=msg.name, auth=auth
            )
        return PrimaryStorageEvent(inventory=await self.answer(uuid, "created", auth))

    async def answer(self, uuid: str, change: Change, auth: AuthContext) -> Inventory:
        """The inventory with its attachedClusterUuids, after publishing the change."""
        async with self.ctx.db.session() as session:
            stmt = select(PrimaryStorageVO).where(PrimaryStorageVO.uuid == uuid)
            row = (await session.execute(stmt.options(LOAD_CLUSTER_REFS))).scalar_one_or_none()
            if row is None:
                raise ZError(
                    SysErr.RESOURCE_NOT_FOUND, f"no primary storage with uuid {uuid}", uuid=uuid
                )
            inventory = PrimaryStorageInventory.model_validate(row, from_attributes=True)
        await self._publish(uuid, change, auth, inventory.model_dump(mode="json", by_alias=True))
        return inventory

    # ----- update, state, reconnect ------------------------------------------------------

    @handles(APIUpdatePrimaryStorageMsg)
    async def update(self, msg: APIUpdatePrimaryStorageMsg) -> PrimaryStorageEvent:
        return await self.ctx.queues.run(lifecycle_queue(msg.uuid), self._update, msg)

    async def _update(self, msg: APIUpdatePrimaryStorageMsg) -> PrimaryStorageEvent:
        # Column names, not wire names: messages serialize by alias by default.
        changes: dict[str, Any] = msg.model_dump(
            include={"name", "description"}, exclude_none=True, by_alias=False
        )
        if msg.url is not None:
            async with self.ctx.db.session() as session:
                ps = await self.require(session, msg.uuid)
                clusters = await _attached_clusters(session, msg.uuid)
            url = backend_for(self.ctx, ps.type).check_url(msg.url)
            if url != ps.url and clusters:
                raise ZError(
                    PrimaryStorageErr.STILL_ATTACHED,
                    f"primary storage {msg.uuid} is attached to clusters {', '.join(clusters)}: "
                    "detach it before changing its url",
                    uuid=msg.uuid,
                    cluster_uuids=clusters,
                )
            changes["url"] = url
        await self.update_fields(msg.uuid, changes)
        return PrimaryStorageEvent(
            inventory=await self.answer(msg.uuid, "updated", msg.require_auth())
        )

    @handles(APIChangePrimaryStorageStateMsg)
    async def change_storage_state(
        self, msg: APIChangePrimaryStorageStateMsg
    ) -> PrimaryStorageEvent:
        return await self.ctx.queues.run(lifecycle_queue(msg.uuid), self._change_state, msg)

    async def _change_state(self, msg: APIChangePrimaryStorageStateMsg) -> PrimaryStorageEvent:
        await self.update_fields(msg.uuid, {"state": _STATES[msg.state_event]})
        return PrimaryStorageEvent(
            inventory=await self.answer(msg.uuid, "updated", msg.require_auth())
        )

    @handles(APIReconnectPrimaryStorageMsg)
    async def reconnect(self, msg: APIReconnectPrimaryStorageMsg) -> PrimaryStorageEvent:
        return await self.ctx.queues.run(lifecycle_queue(msg.uuid), self._reconnect, msg)

    async def _reconnect(self, msg: APIReconnectPrimaryStorageMsg) -> PrimaryStorageEvent:
        """Prepare the storage again on every Connected host of its clusters and refresh
        its books; any host failing leaves it Disconnected with that host's error."""
        storage, clusters = await self._view(msg.uuid)
        await self.update_fields(msg.uuid, {"status": PrimaryStorageStatus.CONNECTING})
        try:
            hosts = [h.uuid for h in await cluster_hosts(self.ctx, clusters, connected_only=True)]
            done, failed = await connect_hosts(self.ctx, storage, hosts)
            await book(self.ctx, storage, done)
            if failed:
                raise prepare_failed(storage, failed)
        except Exception:
            await self.update_fields(msg.uuid, {"status": PrimaryStorageStatus.DISCONNECTED})
            raise
        await self.update_fields(msg.uuid, {"status": PrimaryStorageStatus.CONNECTED})
        return PrimaryStorageEvent(
            inventory=await self.answer(msg.uuid, "updated", msg.require_auth())
        )

    # ----- attach, detach ----------------------------------------------------------------

    @handles(APIAttachPrimaryStorageToClusterMsg)
    async def attach(self, msg: APIAttachPrimaryStorageToClusterMsg) -> PrimaryStorageEvent:
        key = lifecycle_queue(msg.primary_storage_uuid)
        return await self.ctx.queues.run(key, self._attach, msg)

    async def _attach(self, msg: APIAttachPrimaryStorageToClusterMsg) -> PrimaryStorageEvent:
        auth = msg.require_auth()
        ps_uuid, cluster_uuid = msg.primary_storage_uuid, msg.cluster_uuid
        async with self.ctx.db.session() as session:
            ps = await self.require(session, ps_uuid)
            cluster = await session.get(ClusterVO, cluster_uuid)
            if cluster is None or not await may_use(session, cluster_uuid, auth):
                raise ZError(
                    SysErr.RESOURCE_NOT_FOUND,
                    f"no cluster with uuid {cluster_uuid}",
                    uuid=cluster_uuid,
                )
            if cluster.zone_uuid != ps.zone_uuid:
                raise ZError(
                    PrimaryStorageErr.WRONG_ZONE,
                    f"cluster {cluster_uuid} is in zone {cluster.zone_uuid}, primary storage "
                    f"{ps_uuid} in zone {ps.zone_uuid}: attach storage to clusters of its zone",
                    cluster_uuid=cluster_uuid,
                    cluster_zone_uuid=cluster.zone_uuid,
                    primary_storage_uuid=ps_uuid,
                    zone_uuid=ps.zone_uuid,
                )
            if cluster_uuid in await _attached_clusters(session, ps_uuid):
                raise ZError(
                    PrimaryStorageErr.ALREADY_ATTACHED,
                    f"primary storage {ps_uuid} is already attached to cluster {cluster_uuid}",
                    primary_storage_uuid=ps_uuid,
                    cluster_uuid=cluster_uuid,
                )
        storage = StorageView(ps.uuid, ps.type, ps.url, ps.mount_path)
        backend_for(self.ctx, ps.type)  # an unknown type fails before anything is written
        await self.ctx.flows.run(
            ATTACH_CHAIN,
            AttachPrimaryStorageCtx(node=self.ctx, storage=storage, cluster_uuid=cluster_uuid),
        )
        return PrimaryStorageEvent(inventory=await self.answer(ps_uuid, "updated", auth))

    @handles(APIDetachPrimaryStorageFromClusterMsg)
    async def detach_api(self, msg: APIDetachPrimaryStorageFromClusterMsg) -> PrimaryStorageEvent:
        key = lifecycle_queue(msg.primary_storage_uuid)
        await self.ctx.queues.run(
            key, self._detach, msg.primary_storage_uuid, msg.cluster_uuid, False
        )
        auth = msg.require_auth()
        return PrimaryStorageEvent(
            inventory=await self.answer(msg.primary_storage_uuid, "updated", auth)
        )

    @handles(DetachPrimaryStorageMsg)
    async def detach_internal(self, msg: DetachPrimaryStorageMsg) -> Reply:
        key = lifecycle_queue(msg.primary_storage_uuid)
        await self.ctx.queues.run(
            key, self._detach, msg.primary_storage_uuid, msg.cluster_uuid, True
        )
        return Reply()

    async def _detach(self, ps_uuid: str, cluster_uuid: str, cascading: bool) -> None:
        """Remove the attachment, then undo the storage on the cluster's hosts (best
        effort) and drop their books. ``cascading``: the cluster is being deleted, so no
        extension is asked and a missing attachment is no error."""
        storage, clusters = await self._view(ps_uuid)
        if cluster_uuid not in clusters:
            if cascading:
                return
            raise ZError(
                PrimaryStorageErr.NOT_ATTACHED,
                f"primary storage {ps_uuid} is not attached to cluster {cluster_uuid}",
                primary_storage_uuid=ps_uuid,
                cluster_uuid=cluster_uuid,
            )
        if not cascading:
            request = PrimaryStorageDetachRequest(ps_uuid, storage.type, cluster_uuid)
            for extension in self.ctx.plugins.extensions(PrimaryStorageDetachExtension):
                await extension.check_detach(request)
        async with self.ctx.db.session() as session, session.begin():
            await session.execute(
                delete(PrimaryStorageClusterRefVO).where(
                    PrimaryStorageClusterRefVO.primary_storage_uuid == ps_uuid,
                    PrimaryStorageClusterRefVO.cluster_uuid == cluster_uuid,
                )
            )
        hosts = await cluster_hosts(self.ctx, [cluster_uuid], connected_only=False)
        await disconnect_hosts(
            self.ctx, storage, [h.uuid for h in hosts if h.status == "Connected"]
        )
        if backend_for(self.ctx, storage.type).is_host_local():
            await forget(self.ctx, ps_uuid, [h.uuid for h in hosts])

    async def _view(self, uuid: str) -> tuple[StorageView, list[str]]:
        """The storage as host-side steps see it, and the clusters it is attached to."""
        async with self.ctx.db.session() as session:
            ps = await self.require(session, uuid)
            clusters = await _attached_clusters(session, uuid)
        return StorageView(ps.uuid, ps.type, ps.url, ps.mount_path), clusters

    # ----- delete ------------------------------------------------------------------------

    @handles(APIDeletePrimaryStorageMsg)
    async def delete_api(self, msg: APIDeletePrimaryStorageMsg) -> PrimaryStorageEvent:
        await self.ctx.queues.run(lifecycle_queue(msg.uuid), self._delete_api, msg)
        return PrimaryStorageEvent()

    async def _delete_api(self, msg: APIDeletePrimaryStorageMsg) -> None:
        _, clusters = await self._view(msg.uuid)
        if clusters:
            raise ZError(
                PrimaryStorageErr.STILL_ATTACHED,
                f"primary storage {msg.uuid} is attached to clusters {', '.join(clusters)}: "
                "detach it from every cluster before deleting it",
                uuid=msg.uuid,
                cluster_uuids=clusters,
            )
        await self.delete_with_children(msg.uuid, msg.delete_mode, msg.require_auth())

    @handles(DeletePrimaryStorageMsg)
    async def delete_internal(self, msg: DeletePrimaryStorageMsg) -> Reply:
        await self.ctx.queues.run(lifecycle_queue(msg.uuid), self._delete_cascading, msg)
        return Reply()

    async def _delete_cascading(self, msg: DeletePrimaryStorageMsg) -> None:
        # The zone's clusters detached it already; what is left is detached here.
        _, clusters = await self._view(msg.uuid)
        for cluster_uuid in clusters:
            await self._detach(msg.uuid, cluster_uuid, True)
        await self.delete_with_children(msg.uuid, msg.delete_mode, None)

    async def remove(self, uuids: list[str], auth: AuthContext | None) -> None:
        async with self.ctx.db.session() as session, session.begin():
            # Left only by a host that connected during the detach: nothing counts them now.
            await session.execute(
                delete(LocalStorageHostRefVO).where(
                    LocalStorageHostRefVO.primary_storage_uuid.in_(uuids)
                )
            )
            await session.execute(
                delete(PrimaryStorageClusterRefVO).where(
                    PrimaryStorageClusterRefVO.primary_storage_uuid.in_(uuids)
                )
            )
        await super().remove(uuids, auth)

    # ----- HostConnectExtension ----------------------------------------------------------

    async def host_connected(self, host: ConnectingHost) -> None:
        await prepare_connecting_host(self.ctx, host)


async def _attached_clusters(session: AsyncSession, ps_uuid: str) -> list[str]:
    ref = PrimaryStorageClusterRefVO
    rows = await session.execute(
        select(ref.cluster_uuid).where(ref.primary_storage_uuid == ps_uuid).order_by(ref.id)
    )
    return list(rows.scalars())
