"""The volume service's PrimaryStorageDetachExtension: a primary storage may not leave a
cluster while that cluster still uses volumes on it (ZStack refuses the same): volumes
of the cluster's VMs, and, on local storage, any volume on the cluster's hosts' disks."""

from __future__ import annotations

from sqlalchemy import select

from zstackpy.core.errors import SysErr, ZError
from zstackpy.core.service import Service
from zstackpy.services.host.messages import ListHostsMsg, ListHostsReply
from zstackpy.services.primary_storage.extensions import PrimaryStorageDetachRequest
from zstackpy.services.primary_storage.messages import PrimaryStorageErr
from zstackpy.services.vm.messages import GetVmPlacementMsg, GetVmPlacementReply
from zstackpy.services.volume.messages import VolumeStatus
from zstackpy.services.volume.models import VolumeVO

# Named in the error, at most: the details stay readable with thousands of volumes.
_LISTED = 20


class VolumeDetachCheck(Service):
    """A PrimaryStorageDetachExtension; no messages of its own."""

    name = "volumeDetachCheck"

    async def check_detach(self, request: PrimaryStorageDetachRequest) -> None:
        async with self.ctx.db.session() as session:
            volumes = (
                await session.execute(
                    select(VolumeVO.uuid, VolumeVO.vm_instance_uuid, VolumeVO.host_uuid).where(
                        VolumeVO.primary_storage_uuid == request.primary_storage_uuid,
                        VolumeVO.status != VolumeStatus.NOT_INSTANTIATED.value,
                    )
                )
            ).all()
        if not volumes:
            return
        hosts = await self.ctx.bus.request(
            ListHostsMsg(cluster_uuids=[request.cluster_uuid], connected_only=False),
            ListHostsReply,
        )
        cluster_hosts = {h.uuid for h in hosts.hosts}
        used = sorted(v.uuid for v in volumes if v.host_uuid in cluster_hosts)
        vms = sorted(
            {v.vm_instance_uuid for v in volumes if v.vm_instance_uuid and not v.host_uuid}
        )
        vms_here = [vm for vm in vms if await self._vm_cluster(vm) == request.cluster_uuid]
        used += sorted(v.uuid for v in volumes if v.vm_instance_uuid in vms_here)
        if not used:
            return
        raise ZError(
            PrimaryStorageErr.IN_USE,
            f"primary storage {request.primary_storage_uuid} holds {len(used)} volume(s) "
            f"that cluster {request.cluster_uuid} uses"
            + (f" (VMs {', '.join(vms_here[:_LISTED])})" if vms_here else "")
            + ": delete or migrate them before detaching the storage",
            primaryStorageUuid=request.primary_storage_uuid,
            clusterUuid=request.cluster_uuid,
            volumeUuids=used[:_LISTED],
            vmInstanceUuids=vms_here[:_LISTED],
            volumeCount=len(used),
        )

    async def _vm_cluster(self, vm_uuid: str) -> str | None:
        reply = await self.ctx.bus.call(GetVmPlacementMsg(vm_instance_uuid=vm_uuid))
        if not reply.success and reply.error is not None:
            if reply.error.code == SysErr.RESOURCE_NOT_FOUND:
                return None  # the VM is gone: its volume rows are stale, not in use
            reply.raise_if_error()
        return reply.cluster_uuid if isinstance(reply, GetVmPlacementReply) else None
