"""A connecting host prepares the primary storage attached to its cluster (the
HostConnectExtension of the primary storage service)."""

from __future__ import annotations

import logging

from sqlalchemy import select

from zstackpy.core.context import NodeContext
from zstackpy.core.errors import ZError
from zstackpy.services.host.extensions import ConnectingHost
from zstackpy.services.primary_storage.backends import backend_for, call_directly
from zstackpy.services.primary_storage.extensions import HostStorageCapacity
from zstackpy.services.primary_storage.flows import StorageView, book, forget, prepare_failed
from zstackpy.services.primary_storage.messages import PrimaryStorageState
from zstackpy.services.primary_storage.models import (
    PrimaryStorageClusterRefVO,
    PrimaryStorageVO,
)

log = logging.getLogger(__name__)


async def storage_of_cluster(node: NodeContext, cluster_uuid: str) -> list[StorageView]:
    """Storage attached to the cluster that hosts must serve (not in Maintenance)."""
    ps, ref = PrimaryStorageVO, PrimaryStorageClusterRefVO
    stmt = (
        select(ps.uuid, ps.type, ps.url, ps.mount_path)
        .join(ref, ref.primary_storage_uuid == ps.uuid)
        .where(ref.cluster_uuid == cluster_uuid, ps.state != PrimaryStorageState.MAINTENANCE)
        .order_by(ref.id)
    )
    async with node.db.session() as session:
        rows = (await session.execute(stmt)).all()
    return [StorageView(uuid, kind, url, mount_path) for uuid, kind, url, mount_path in rows]


async def prepare_connecting_host(node: NodeContext, host: ConnectingHost) -> None:
    """Mount or init every storage of the host's cluster on it, then book what it reported.

    Runs in the host's queue, so the agent is called directly. Nothing is booked until
    every storage is ready: a failure undoes the storage already prepared on this host
    (best effort) and raises PS.1007, which fails the connect; a booking that fails
    drops the books already made for this host before raising."""
    call = call_directly(node, host.agent)
    prepared: list[tuple[StorageView, HostStorageCapacity]] = []
    try:
        for storage in await storage_of_cluster(node, host.cluster_uuid):
            backend = backend_for(node, storage.type)
            try:
                capacity = await backend.connect_host(storage.on(host.uuid), call)
            except ZError as exc:
                raise prepare_failed(storage, {host.uuid: exc}) from exc
            prepared.append((storage, capacity))
    except ZError:
        for storage, _ in reversed(prepared):
            try:
                await backend_for(node, storage.type).disconnect_host(storage.on(host.uuid), call)
            except ZError as exc:
                log.warning(
                    "could not undo storage %s on host %s: %s", storage.uuid, host.uuid, exc
                )
        raise
    booked: list[StorageView] = []
    try:
        for storage, capacity in prepared:
            await book(node, storage, {host.uuid: capacity})
            booked.append(storage)
    except ZError:
        # A failed connect leaves no books behind: the host row may be rolled back next.
        for storage in booked:
            if backend_for(node, storage.type).is_host_local():
                await forget(node, storage.uuid, [host.uuid])
        raise
