"""The volume service: the internal messages of the VM service (root and data volumes of
VMs, deletion, listing) here, the data volume API in data_volumes.py.

Every change of one volume runs in its queue (``volume_queue``) on the volume's ring
owner. Volumes are children of their primary storage and, on local storage, of their
host: deleting either expunges them (CascadeParticipant).
"""

from __future__ import annotations

from sqlalchemy import case, select

from zstackpy.core.bus.message import Reply
from zstackpy.core.cascade import CascadeChildren, DeleteMode
from zstackpy.core.clock import utcnow
from zstackpy.core.errors import SysErr, ZError
from zstackpy.core.service import handles
from zstackpy.services.image.messages import GetImageMsg, GetImageReply, ImageInventory
from zstackpy.services.volume.base import view_of, volume_queue
from zstackpy.services.volume.data_volumes import DataVolumeApi
from zstackpy.services.volume.flows import CreateVolumeCtx
from zstackpy.services.volume.messages import (
    CreateDataVolumeForVmMsg,
    CreateRootVolumeMsg,
    DeleteVolumeMsg,
    DetachVmDataVolumesMsg,
    ForgetVolumeAttachmentMsg,
    GetVolumeMsg,
    ListVmVolumesMsg,
    ListVmVolumesReply,
    RecoverVolumeMsg,
    VolumeErr,
    VolumeReply,
    VolumeStatus,
    VolumeType,
)
from zstackpy.services.volume.models import VolumeVO

_PARENTS = ("PrimaryStorageVO", "HostVO")


class VolumeService(DataVolumeApi):
    # ----- volumes of VMs ---------------------------------------------------------------

    @handles(CreateRootVolumeMsg)
    async def create_root(self, msg: CreateRootVolumeMsg) -> VolumeReply:
        return await self.ctx.queues.run(volume_queue(msg.volume_uuid), self._create_root, msg)

    async def _create_root(self, msg: CreateRootVolumeMsg) -> VolumeReply:
        await self._refuse_existing(msg.volume_uuid)
        image = msg.image if msg.image is not None else await self._image(msg.image_uuid)
        iso = image.media_type == "ISO"
        if iso and msg.size <= 0:
            raise ZError(
                VolumeErr.INVALID_SIZE,
                f"image {image.name} ({image.uuid}) is an ISO: the root volume needs a size "
                "(a root disk offering)",
                imageUuid=image.uuid,
            )
        ctx = CreateVolumeCtx(
            node=self.ctx,
            volume_uuid=msg.volume_uuid,
            name=msg.name,
            volume_type=VolumeType.ROOT,
            size=msg.size if iso else max(image.size, msg.size),
            host_uuid=msg.host_uuid,
            cluster_uuid=msg.cluster_uuid,
            vm_instance_uuid=msg.vm_instance_uuid,
            device_id=0,
            description=f"Root volume for VM[uuid:{msg.vm_instance_uuid}]",
            primary_storage_uuid=msg.primary_storage_uuid,
            disk_offering_uuid=msg.disk_offering_uuid,
            image=image,
            account_uuid=msg.account_uuid,
        )
        await self.ctx.flows.run("create-empty-volume" if iso else "create-root-volume", ctx)
        return await self._created(msg.volume_uuid)

    @handles(CreateDataVolumeForVmMsg)
    async def create_data_for_vm(self, msg: CreateDataVolumeForVmMsg) -> VolumeReply:
        return await self.ctx.queues.run(volume_queue(msg.volume_uuid), self._create_data, msg)

    async def _create_data(self, msg: CreateDataVolumeForVmMsg) -> VolumeReply:
        await self._refuse_existing(msg.volume_uuid)
        ctx = CreateVolumeCtx(
            node=self.ctx,
            volume_uuid=msg.volume_uuid,
            name=msg.name,
            volume_type=VolumeType.DATA,
            size=msg.size,
            host_uuid=msg.host_uuid,
            cluster_uuid=msg.cluster_uuid,
            vm_instance_uuid=msg.vm_instance_uuid,
            device_id=msg.device_id,
            primary_storage_uuid=msg.primary_storage_uuid,
            disk_offering_uuid=msg.disk_offering_uuid,
            account_uuid=msg.account_uuid,
        )
        await self.ctx.flows.run("create-empty-volume", ctx)
        await self.set_fields(msg.volume_uuid, last_attach_date=utcnow())
        return await self._created(msg.volume_uuid)

    async def _refuse_existing(self, uuid: str) -> None:
        if await self.exists(uuid):
            raise ZError(
                SysErr.CREATE_RESOURCE, f"a {self.noun} with uuid {uuid} exists", uuid=uuid
            )

    async def _image(self, uuid: str) -> ImageInventory:
        reply = await self.ctx.bus.request(GetImageMsg(image_uuid=uuid), GetImageReply)
        if reply.inventory is None:
            raise ZError(SysErr.RESOURCE_NOT_FOUND, f"no image with uuid {uuid}", uuid=uuid)
        return reply.inventory

    async def _created(self, uuid: str) -> VolumeReply:
        row = await self.load(uuid)
        await self.announce(row, "created", None)
        return VolumeReply(volume=view_of(row))

    @handles(DeleteVolumeMsg)
    async def delete_internal(self, msg: DeleteVolumeMsg) -> Reply:
        await self.ctx.queues.run(volume_queue(msg.volume_uuid), self._delete_internal, msg)
        return Reply()

    async def _delete_internal(self, msg: DeleteVolumeMsg) -> None:
        async with self.ctx.db.session() as session:
            row = await session.get(VolumeVO, msg.volume_uuid)
        if row is None:
            return  # gone already: rollbacks and cascades may ask twice
        if msg.expunge:
            await self.expunge(row, None)
        elif row.status != VolumeStatus.DELETED:
            await self.set_fields(row.uuid, status=VolumeStatus.DELETED.value)
            await self.event(row.uuid, "updated", None)

    @handles(RecoverVolumeMsg)
    async def recover_internal(self, msg: RecoverVolumeMsg) -> VolumeReply:
        return await self.ctx.queues.run(
            volume_queue(msg.volume_uuid), self._recover_internal, msg.volume_uuid
        )

    async def _recover_internal(self, uuid: str) -> VolumeReply:
        await self.recover_row(await self.load(uuid), None)
        return VolumeReply(volume=view_of(await self.load(uuid)))

    @handles(ListVmVolumesMsg)
    async def list_vm_volumes(self, msg: ListVmVolumesMsg) -> ListVmVolumesReply:
        root_first = case((VolumeVO.type == VolumeType.ROOT.value, 0), else_=1)
        async with self.ctx.db.session() as session:
            rows = (
                await session.execute(
                    select(VolumeVO)
                    .where(
                        VolumeVO.vm_instance_uuid == msg.vm_instance_uuid,
                        VolumeVO.status != VolumeStatus.DELETED.value,
                    )
                    .order_by(root_first, VolumeVO.device_id, VolumeVO.uuid)
                )
            ).scalars()
            return ListVmVolumesReply(volumes=[view_of(r) for r in rows])

    @handles(GetVolumeMsg)
    async def get(self, msg: GetVolumeMsg) -> VolumeReply:
        return VolumeReply(volume=view_of(await self.load(msg.volume_uuid)))

    @handles(DetachVmDataVolumesMsg)
    async def detach_volumes_of_vm(self, msg: DetachVmDataVolumesMsg) -> Reply:
        async with self.ctx.db.session() as session:
            uuids = list(
                (
                    await session.execute(
                        select(VolumeVO.uuid).where(
                            VolumeVO.vm_instance_uuid == msg.vm_instance_uuid,
                            VolumeVO.type == VolumeType.DATA.value,
                        )
                    )
                ).scalars()
            )
        replies = await self.ctx.bus.call_many(
            [
                ForgetVolumeAttachmentMsg(volume_uuid=u, vm_instance_uuid=msg.vm_instance_uuid)
                for u in uuids
            ],
            parallelism=8,
        )
        for reply in replies:
            reply.raise_if_error()
        return Reply()

    @handles(ForgetVolumeAttachmentMsg)
    async def forget_attachment(self, msg: ForgetVolumeAttachmentMsg) -> Reply:
        await self.ctx.queues.run(volume_queue(msg.volume_uuid), self._forget_attachment, msg)
        return Reply()

    async def _forget_attachment(self, msg: ForgetVolumeAttachmentMsg) -> None:
        async with self.ctx.db.session() as session:
            row = await session.get(VolumeVO, msg.volume_uuid)
        if row is None or row.vm_instance_uuid != msg.vm_instance_uuid:
            return
        await self.mark_detached(row.uuid, msg.vm_instance_uuid)

    # ----- CascadeParticipant: volumes live on primary storage (and hosts) --------------

    async def cascade_children(
        self, parent_type: str, parent_uuids: tuple[str, ...]
    ) -> CascadeChildren | None:
        if parent_type not in _PARENTS:
            return None
        column = (
            VolumeVO.primary_storage_uuid
            if parent_type == "PrimaryStorageVO"
            else VolumeVO.host_uuid
        )
        async with self.ctx.db.session() as session:
            rows = await session.execute(
                select(VolumeVO.uuid).where(column.in_(parent_uuids)).order_by(VolumeVO.uuid)
            )
            uuids = tuple(rows.scalars())
        return CascadeChildren(self.resource_type, uuids)

    async def cascade_check(self, children: CascadeChildren) -> None:
        """Volumes never refuse: the VMs using them (deleted first) do."""

    async def cascade_delete(self, children: CascadeChildren, mode: DeleteMode) -> None:
        replies = await self.ctx.bus.call_many(
            [DeleteVolumeMsg(volume_uuid=u, expunge=True) for u in children.uuids], parallelism=8
        )
        for reply in replies:
            reply.raise_if_error()
