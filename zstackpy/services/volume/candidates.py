"""GetDataVolumeAttachableVm: the VMs a data volume could be attached to, answered by the
generic query service (so the caller sees only VMs it may see, as full inventories).

A VM qualifies when it is Running or Stopped, in a cluster its storage is attached to
(for a NotInstantiated volume: the storage it must go on, or any storage), and, for a
volume on local storage, when its root volume is on the same host.
"""

from __future__ import annotations

from typing import ClassVar

from sqlalchemy import select

from zstackpy.api.messages import APIQueryMessage, APIQueryReply, QueryCondition
from zstackpy.core.errors import SysErr, ZError
from zstackpy.core.service import Service, handles
from zstackpy.services.primary_storage.models import PrimaryStorageClusterRefVO
from zstackpy.services.volume.messages import (
    APIGetDataVolumeAttachableVmMsg,
    APIGetDataVolumeAttachableVmReply,
    VolumeState,
    VolumeStatus,
    VolumeType,
)
from zstackpy.services.volume.models import VolumeVO


class _QueryVms(APIQueryMessage):
    """Not an API: a VmInstance query this service hands to the query service."""

    query_of: ClassVar[str] = "VmInstance"


class AttachableVmService(Service):
    name = "volumeAttachableVm"

    @handles(APIGetDataVolumeAttachableVmMsg)
    async def candidates(
        self, msg: APIGetDataVolumeAttachableVmMsg
    ) -> APIGetDataVolumeAttachableVmReply:
        async with self.ctx.db.session() as session:
            row = await session.get(VolumeVO, msg.volume_uuid)
            if row is None:
                raise ZError(
                    SysErr.RESOURCE_NOT_FOUND,
                    f"no volume with uuid {msg.volume_uuid}",
                    uuid=msg.volume_uuid,
                )
            if (
                row.type != VolumeType.DATA
                or row.vm_instance_uuid is not None
                or row.state != VolumeState.ENABLED
                or row.status not in (VolumeStatus.READY, VolumeStatus.NOT_INSTANTIATED)
            ):
                return APIGetDataVolumeAttachableVmReply()
            refs = select(PrimaryStorageClusterRefVO.cluster_uuid).distinct()
            if row.primary_storage_uuid is not None:
                refs = refs.where(
                    PrimaryStorageClusterRefVO.primary_storage_uuid == row.primary_storage_uuid
                )
            clusters = sorted((await session.execute(refs)).scalars())
            vms: list[str] | None = None
            if row.host_uuid is not None:
                vms = sorted(
                    v
                    for v in (
                        await session.execute(
                            select(VolumeVO.vm_instance_uuid).where(
                                VolumeVO.type == VolumeType.ROOT.value,
                                VolumeVO.host_uuid == row.host_uuid,
                            )
                        )
                    ).scalars()
                    if v is not None
                )
        if not clusters or vms == []:
            return APIGetDataVolumeAttachableVmReply()
        conditions = [
            QueryCondition(name="state", op="in", value="Running,Stopped"),
            QueryCondition(name="clusterUuid", op="in", value=",".join(clusters)),
        ]
        if vms is not None:
            conditions.append(QueryCondition(name="uuid", op="in", value=",".join(vms)))
        reply = await self.ctx.bus.request(
            _QueryVms(conditions=conditions, auth=msg.require_auth()),
            APIQueryReply,
            service="query",
        )
        return APIGetDataVolumeAttachableVmReply(inventories=reply.inventories or [])
