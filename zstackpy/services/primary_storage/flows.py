"""Attaching primary storage to a cluster (``flows/primary-storage-attach.yaml``), and the
host-side steps attach, detach and reconnect share.

The attachment row is written first, so a host of the cluster that connects while the
attach runs finds the storage attached and prepares itself (``host_hooks``); preparing a
host twice is harmless (mount and init are idempotent, books are refreshed, not added).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from sqlalchemy import delete

from zstackpy.core.context import NodeContext
from zstackpy.core.errors import ZError, error_info_of
from zstackpy.core.flow import Flow
from zstackpy.services.host.messages import HostErr, HostSummary, ListHostsMsg, ListHostsReply
from zstackpy.services.primary_storage.backends import backend_for, call_through_host
from zstackpy.services.primary_storage.extensions import HostStorageCapacity, StorageOnHost
from zstackpy.services.primary_storage.messages import (
    ForgetHostCapacityMsg,
    HostStorageReport,
    PrimaryStorageErr,
    RecordHostCapacityMsg,
)
from zstackpy.services.primary_storage.models import PrimaryStorageClusterRefVO

log = logging.getLogger(__name__)

ATTACH_CHAIN = "attach-primary-storage"
# Hosts of one cluster prepared at once: enough for big clusters, without flooding the bus.
HOST_PARALLELISM = 32


@dataclass(frozen=True, slots=True)
class StorageView:
    """What host-side steps need to know of a primary storage."""

    uuid: str
    type: str
    url: str
    mount_path: str | None

    def on(self, host_uuid: str) -> StorageOnHost:
        return StorageOnHost(self.uuid, self.url, self.mount_path, host_uuid)


async def cluster_hosts(
    node: NodeContext, cluster_uuids: list[str], *, connected_only: bool
) -> list[HostSummary]:
    """Hosts of the clusters (only the Connected ones with ``connected_only``)."""
    if not cluster_uuids:
        return []
    reply = await node.bus.request(
        ListHostsMsg(cluster_uuids=cluster_uuids, connected_only=connected_only), ListHostsReply
    )
    return reply.hosts


async def connect_hosts(
    node: NodeContext, storage: StorageView, host_uuids: list[str]
) -> tuple[dict[str, HostStorageCapacity], dict[str, ZError]]:
    """Prepare the storage on every host (through each host's queue); answers what each
    host reported and, separately, each failure. Every host is tried: a failure on one
    does not cancel the others, so the caller knows exactly what to undo. A host that is
    no longer Connected when its turn comes (HOST.1002) is skipped, not failed: its
    reconnect runs the connect hook, which finds the storage attached and prepares it."""
    backend = backend_for(node, storage.type)
    slots = asyncio.Semaphore(HOST_PARALLELISM)  # bounds parallelism; guards no state
    done: dict[str, HostStorageCapacity] = {}
    failed: dict[str, ZError] = {}

    async def one(host_uuid: str) -> None:
        async with slots:
            try:
                call = call_through_host(node, host_uuid)
                done[host_uuid] = await backend.connect_host(storage.on(host_uuid), call)
            except ZError as exc:
                if exc.code == HostErr.WRONG_STATE:
                    # No longer Connected: its next connect prepares it (connect hook).
                    log.info("host %s left Connected; storage %s skipped", host_uuid, storage.uuid)
                    return
                failed[host_uuid] = exc

    await asyncio.gather(*(one(h) for h in host_uuids))
    return done, failed


async def disconnect_hosts(node: NodeContext, storage: StorageView, host_uuids: list[str]) -> None:
    """Best effort: undo the storage on hosts; failures (a host gone, an agent down) are
    logged, since the node's books no longer count those hosts either way."""
    backend = backend_for(node, storage.type)
    slots = asyncio.Semaphore(HOST_PARALLELISM)

    async def one(host_uuid: str) -> None:
        async with slots:
            try:
                await backend.disconnect_host(
                    storage.on(host_uuid), call_through_host(node, host_uuid)
                )
            except ZError as exc:
                log.warning(
                    "could not undo primary storage %s on host %s: %s",
                    storage.uuid,
                    host_uuid,
                    exc,
                )

    await asyncio.gather(*(one(h) for h in host_uuids))


def prepare_failed(storage: StorageView, failed: dict[str, ZError]) -> ZError:
    """PS.1007 naming the first failed host (its error as the cause), all failed hosts."""
    host_uuid, first = next(iter(failed.items()))
    return ZError(
        PrimaryStorageErr.HOST_PREPARE_FAILED,
        f"cannot prepare {storage.type} primary storage {storage.uuid} on host {host_uuid}: "
        f"{first.description}",
        cause=error_info_of(first),
        uuid=storage.uuid,
        host_uuid=host_uuid,
        failed_host_uuids=sorted(failed),
    )


async def book(
    node: NodeContext, storage: StorageView, done: dict[str, HostStorageCapacity]
) -> None:
    """Record what the hosts reported in the storage's books (capacity queue)."""
    if not done:
        return
    reports = [
        HostStorageReport(host_uuid=h, total_capacity=c.total, available_capacity=c.available)
        for h, c in sorted(done.items())
    ]
    reply = await node.bus.call(
        RecordHostCapacityMsg(primary_storage_uuid=storage.uuid, reports=reports)
    )
    reply.raise_if_error()


async def forget(node: NodeContext, storage_uuid: str, host_uuids: list[str]) -> None:
    if host_uuids:
        reply = await node.bus.call(
            ForgetHostCapacityMsg(primary_storage_uuid=storage_uuid, host_uuids=host_uuids)
        )
        reply.raise_if_error()


# ----- the attach chain ----------------------------------------------------------------


@dataclass
class AttachPrimaryStorageCtx:
    node: NodeContext
    storage: StorageView
    cluster_uuid: str
    ref_id: int | None = None
    prepared: dict[str, HostStorageCapacity] = field(default_factory=dict)


class RecordClusterRef(Flow[AttachPrimaryStorageCtx]):
    """Write the attachment row (first: see the module docstring)."""

    async def run(self, ctx: AttachPrimaryStorageCtx) -> None:
        async with ctx.node.db.session() as session, session.begin():
            ref = PrimaryStorageClusterRefVO(
                primary_storage_uuid=ctx.storage.uuid, cluster_uuid=ctx.cluster_uuid
            )
            session.add(ref)
            await session.flush()
            ctx.ref_id = ref.id

    async def rollback(self, ctx: AttachPrimaryStorageCtx) -> None:
        if ctx.ref_id is None:
            return
        async with ctx.node.db.session() as session, session.begin():
            await session.execute(
                delete(PrimaryStorageClusterRefVO).where(
                    PrimaryStorageClusterRefVO.id == ctx.ref_id
                )
            )


class ConnectClusterHosts(Flow[AttachPrimaryStorageCtx]):
    """Mount or init the storage on every Connected host of the cluster; any failure
    fails the attach (and the rollback undoes the hosts that succeeded)."""

    async def run(self, ctx: AttachPrimaryStorageCtx) -> None:
        hosts = await cluster_hosts(ctx.node, [ctx.cluster_uuid], connected_only=True)
        done, failed = await connect_hosts(ctx.node, ctx.storage, [h.uuid for h in hosts])
        ctx.prepared = done
        if failed:
            raise prepare_failed(ctx.storage, failed)

    async def rollback(self, ctx: AttachPrimaryStorageCtx) -> None:
        await disconnect_hosts(ctx.node, ctx.storage, sorted(ctx.prepared))


class BookHostCapacity(Flow[AttachPrimaryStorageCtx]):
    """Book what the hosts reported: local storage grows by each host's disk, a share
    takes the share's capacity."""

    async def run(self, ctx: AttachPrimaryStorageCtx) -> None:
        await book(ctx.node, ctx.storage, ctx.prepared)

    async def rollback(self, ctx: AttachPrimaryStorageCtx) -> None:
        if backend_for(ctx.node, ctx.storage.type).is_host_local():
            await forget(ctx.node, ctx.storage.uuid, sorted(ctx.prepared))


ATTACH_FLOWS = {
    "record-primary-storage-cluster-ref": RecordClusterRef,
    "connect-primary-storage-hosts": ConnectClusterHosts,
    "book-primary-storage-capacity": BookHostCapacity,
}
