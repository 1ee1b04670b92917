"""The data volume API: create (NotInstantiated), attach (instantiating it on storage
the VM's host reaches), detach, delete (``volume deletionPolicy``), expunge, recover,
update, change state. Each runs in the volume's queue; the VM side of an attach or detach
is the VM service's (AttachVolumeToVmMsg / DetachVolumeFromVmMsg, in the VM's queue)."""

from __future__ import annotations

from sqlalchemy import select

from zstackpy.api.messages import AuthContext
from zstackpy.api.ownership import add_resource, may_use
from zstackpy.core.clock import utcnow
from zstackpy.core.errors import SysErr, ZError
from zstackpy.core.service import handles
from zstackpy.services.offering.models import DiskOfferingVO
from zstackpy.services.primary_storage.messages import ReturnPrimaryStorageCapacityMsg
from zstackpy.services.primary_storage.models import PrimaryStorageVO
from zstackpy.services.vm.messages import (
    AttachVolumeToVmMsg,
    AttachVolumeToVmReply,
    DetachVolumeFromVmMsg,
    GetVmPlacementMsg,
    GetVmPlacementReply,
    VmErr,
    VmState,
)
from zstackpy.services.volume.access import load_storage
from zstackpy.services.volume.base import VolumeBase, view_of, volume_queue
from zstackpy.services.volume.configs import DELETION_POLICY, DIRECT
from zstackpy.services.volume.flows import CreateVolumeCtx
from zstackpy.services.volume.messages import (
    APIAttachDataVolumeToVmMsg,
    APIChangeVolumeStateMsg,
    APICreateDataVolumeMsg,
    APIDeleteDataVolumeMsg,
    APIDetachDataVolumeFromVmMsg,
    APIExpungeDataVolumeMsg,
    APIRecoverDataVolumeMsg,
    APIUpdateVolumeMsg,
    VolumeErr,
    VolumeEvent,
    VolumeState,
    VolumeStatus,
    VolumeType,
)
from zstackpy.services.volume.models import VolumeVO

# A VM takes a volume only in these states (ZStack: Running live, Stopped at next start).
_ATTACHABLE = (VmState.RUNNING.value, VmState.STOPPED.value)


class DataVolumeApi(VolumeBase):
    # ----- create -----------------------------------------------------------------------

    @handles(APICreateDataVolumeMsg)
    async def create_api(self, msg: APICreateDataVolumeMsg) -> VolumeEvent:
        assert msg.resource_uuid is not None  # the portal gives every create its UUID
        return await self.ctx.queues.run(volume_queue(msg.resource_uuid), self._create_api, msg)

    async def _create_api(self, msg: APICreateDataVolumeMsg) -> VolumeEvent:
        uuid, auth = msg.resource_uuid, msg.require_auth()
        assert uuid is not None
        async with self.ctx.db.session() as session, session.begin():
            await self.refuse_duplicate(session, uuid)
            size = msg.disk_size
            if msg.disk_offering_uuid is not None:
                offering = await session.get(DiskOfferingVO, msg.disk_offering_uuid)
                if offering is None or not await may_use(session, offering.uuid, auth):
                    raise ZError(
                        SysErr.RESOURCE_NOT_FOUND,
                        f"no disk offering with uuid {msg.disk_offering_uuid}",
                        uuid=msg.disk_offering_uuid,
                    )
                if offering.state != "Enabled":
                    raise ZError(
                        VolumeErr.DISK_OFFERING_DISABLED,
                        f"disk offering {offering.name} ({offering.uuid}) is Disabled",
                        diskOfferingUuid=offering.uuid,
                    )
                size = offering.disk_size
            if size is None or size <= 0:
                raise ZError(VolumeErr.INVALID_SIZE, "give diskOfferingUuid or diskSize")
            if msg.primary_storage_uuid is not None and (
                await session.get(PrimaryStorageVO, msg.primary_storage_uuid) is None
            ):
                raise ZError(
                    SysErr.RESOURCE_NOT_FOUND,
                    f"no primary storage with uuid {msg.primary_storage_uuid}",
                    uuid=msg.primary_storage_uuid,
                )
            # Not on storage yet: primary_storage_uuid only says where it must go.
            session.add(
                VolumeVO(
                    uuid=uuid,
                    name=msg.name,
                    description=msg.description,
                    primary_storage_uuid=msg.primary_storage_uuid,
                    disk_offering_uuid=msg.disk_offering_uuid,
                    type=VolumeType.DATA.value,
                    format="qcow2",
                    size=size,
                    actual_size=0,
                    state=VolumeState.ENABLED.value,
                    status=VolumeStatus.NOT_INSTANTIATED.value,
                    is_shareable=False,
                )
            )
            add_resource(
                session, uuid=uuid, resource_type=self.resource_type, name=msg.name, auth=auth
            )
        return await self.event(uuid, "created", auth)

    # ----- attach -----------------------------------------------------------------------

    @handles(APIAttachDataVolumeToVmMsg)
    async def attach_api(self, msg: APIAttachDataVolumeToVmMsg) -> VolumeEvent:
        return await self.ctx.queues.run(volume_queue(msg.volume_uuid), self._attach, msg)

    async def _attach(self, msg: APIAttachDataVolumeToVmMsg) -> VolumeEvent:
        auth, vm_uuid = msg.require_auth(), msg.vm_instance_uuid
        row = await self.load(msg.volume_uuid)
        self.refuse_root(row, "attach")
        if row.vm_instance_uuid is not None:
            raise ZError(
                VolumeErr.WRONG_STATE,
                f"volume {row.name} ({row.uuid}) is attached to VM {row.vm_instance_uuid} already",
                uuid=row.uuid,
                vmInstanceUuid=row.vm_instance_uuid,
            )
        if row.state != VolumeState.ENABLED or row.status not in (
            VolumeStatus.READY,
            VolumeStatus.NOT_INSTANTIATED,
        ):
            raise ZError(
                VolumeErr.WRONG_STATE,
                f"volume {row.name} ({row.uuid}) is {row.state} and {row.status}: only an "
                "Enabled volume, Ready or NotInstantiated, can be attached",
                uuid=row.uuid,
                state=row.state,
                status=row.status,
            )
        await self._require_vm(vm_uuid, auth)
        placement = await self.ctx.bus.request(
            GetVmPlacementMsg(vm_instance_uuid=vm_uuid), GetVmPlacementReply
        )
        if placement.state not in _ATTACHABLE:
            raise ZError(
                VmErr.WRONG_STATE,
                f"VM {vm_uuid} is {placement.state}: a volume attaches to a Running or Stopped VM",
                vmInstanceUuid=vm_uuid,
                state=placement.state,
            )
        host, cluster = await self._vm_host(vm_uuid, placement)
        required = row.primary_storage_uuid
        made_now = row.status == VolumeStatus.NOT_INSTANTIATED
        if made_now:
            ctx = CreateVolumeCtx(
                node=self.ctx,
                volume_uuid=row.uuid,
                name=row.name,
                volume_type=VolumeType.DATA,
                size=row.size,
                host_uuid=host,
                cluster_uuid=cluster,
                primary_storage_uuid=required,
                existing=True,
            )
            await self.ctx.flows.run("create-empty-volume", ctx)
            row = await self.load(row.uuid)
        else:
            await self._check_reachable(row, host, cluster)
        view = view_of(row).model_copy(update={"vm_instance_uuid": vm_uuid})
        try:
            reply = await self.ctx.bus.request(
                AttachVolumeToVmMsg(vm_instance_uuid=vm_uuid, volume=view), AttachVolumeToVmReply
            )
        except ZError:
            if made_now:
                await self._uninstantiate(row, required)
            raise
        await self.set_fields(
            row.uuid,
            vm_instance_uuid=vm_uuid,
            last_vm_instance_uuid=vm_uuid,
            device_id=reply.device_id,
            last_attach_date=utcnow(),
        )
        return await self.event(row.uuid, "updated", auth)

    async def _require_vm(self, vm_uuid: str, auth: AuthContext) -> None:
        """A VM the caller may use (another account's answers as a missing one)."""
        if auth.is_admin:
            return
        async with self.ctx.db.session() as session:
            if not await may_use(session, vm_uuid, auth):
                raise ZError(
                    SysErr.RESOURCE_NOT_FOUND, f"no VM instance with uuid {vm_uuid}", uuid=vm_uuid
                )

    async def _vm_host(self, vm_uuid: str, placement: GetVmPlacementReply) -> tuple[str, str]:
        """The host the VM's volumes must be reached from: where its root volume is on
        local storage, else where it runs (or last ran); and its cluster."""
        async with self.ctx.db.session() as session:
            root_host = await session.scalar(
                select(VolumeVO.host_uuid).where(
                    VolumeVO.vm_instance_uuid == vm_uuid, VolumeVO.type == VolumeType.ROOT.value
                )
            )
        host = root_host or placement.host_uuid or placement.last_host_uuid
        if host is None or placement.cluster_uuid is None:
            raise ZError(
                VolumeErr.UNREACHABLE_STORAGE,
                f"VM {vm_uuid} has no host yet: start it once before attaching volumes",
                vmInstanceUuid=vm_uuid,
            )
        return host, placement.cluster_uuid

    async def _check_reachable(self, row: VolumeVO, host: str, cluster: str) -> None:
        """An instantiated volume attaches only where the VM's host reaches its storage."""
        assert row.primary_storage_uuid is not None  # instantiated
        storage = await load_storage(self.ctx, row.primary_storage_uuid)
        if cluster not in storage.cluster_uuids or (
            row.host_uuid is not None and row.host_uuid != host
        ):
            raise ZError(
                VolumeErr.UNREACHABLE_STORAGE,
                f"volume {row.name} ({row.uuid}) is on primary storage "
                f"{row.primary_storage_uuid}"
                + (f" on host {row.host_uuid}" if row.host_uuid else "")
                + f": the VM's host {host} (cluster {cluster}) cannot reach it",
                uuid=row.uuid,
                primaryStorageUuid=row.primary_storage_uuid,
                volumeHostUuid=row.host_uuid,
                vmHostUuid=host,
                clusterUuid=cluster,
            )

    async def _uninstantiate(self, row: VolumeVO, required: str | None) -> None:
        """Undo an instantiation whose attach failed: file, reservation, place."""
        await self._delete_file(row)
        if row.primary_storage_uuid is not None:
            await self.ctx.bus.call(
                ReturnPrimaryStorageCapacityMsg(
                    primary_storage_uuid=row.primary_storage_uuid,
                    host_uuid=row.host_uuid,
                    size=row.size,
                )
            )
        await self.set_fields(
            row.uuid,
            primary_storage_uuid=required,
            host_uuid=None,
            install_path=None,
            actual_size=0,
            status=VolumeStatus.NOT_INSTANTIATED.value,
        )

    # ----- detach -----------------------------------------------------------------------

    @handles(APIDetachDataVolumeFromVmMsg)
    async def detach_api(self, msg: APIDetachDataVolumeFromVmMsg) -> VolumeEvent:
        return await self.ctx.queues.run(volume_queue(msg.uuid), self._detach_api, msg)

    async def _detach_api(self, msg: APIDetachDataVolumeFromVmMsg) -> VolumeEvent:
        row = await self.load(msg.uuid)
        self.refuse_root(row, "detach")
        if row.vm_instance_uuid is None or (
            msg.vm_uuid is not None and msg.vm_uuid != row.vm_instance_uuid
        ):
            raise ZError(
                VolumeErr.NOT_ATTACHED,
                f"volume {row.name} ({row.uuid}) is not attached to "
                + (f"VM {msg.vm_uuid}" if msg.vm_uuid else "any VM"),
                uuid=row.uuid,
                vmInstanceUuid=row.vm_instance_uuid,
            )
        await self.detach(row)
        return await self.event(row.uuid, "updated", msg.require_auth())

    async def detach(self, row: VolumeVO) -> None:
        """Take an attached data volume off its VM (live when it runs), in its queue."""
        vm_uuid = row.vm_instance_uuid
        assert vm_uuid is not None
        reply = await self.ctx.bus.call(
            DetachVolumeFromVmMsg(vm_instance_uuid=vm_uuid, volume=view_of(row))
        )
        # A VM that is gone holds nothing: only the row still names it.
        if not reply.success and (
            reply.error is None or reply.error.code != SysErr.RESOURCE_NOT_FOUND
        ):
            reply.raise_if_error()
        await self.mark_detached(row.uuid, vm_uuid)

    async def mark_detached(self, uuid: str, vm_uuid: str) -> None:
        await self.set_fields(
            uuid,
            vm_instance_uuid=None,
            device_id=None,
            last_vm_instance_uuid=vm_uuid,
            last_detach_date=utcnow(),
        )
        await self.event(uuid, "updated", None)

    # ----- delete, expunge, recover -----------------------------------------------------

    @handles(APIDeleteDataVolumeMsg)
    async def delete_api(self, msg: APIDeleteDataVolumeMsg) -> VolumeEvent:
        await self.ctx.queues.run(volume_queue(msg.uuid), self._delete_api, msg)
        return VolumeEvent()

    async def _delete_api(self, msg: APIDeleteDataVolumeMsg) -> None:
        auth = msg.require_auth()
        row = await self.load(msg.uuid)
        self.refuse_root(row, "delete")
        if row.vm_instance_uuid is not None:
            await self.detach(row)
            row = await self.load(msg.uuid)
        if self.ctx.configs.value(DELETION_POLICY) == DIRECT:
            await self.expunge(row, auth)
        elif row.status != VolumeStatus.DELETED:
            await self.set_fields(row.uuid, status=VolumeStatus.DELETED.value)
            await self.event(row.uuid, "updated", auth)

    @handles(APIExpungeDataVolumeMsg)
    async def expunge_api(self, msg: APIExpungeDataVolumeMsg) -> VolumeEvent:
        await self.ctx.queues.run(volume_queue(msg.uuid), self._expunge_api, msg)
        return VolumeEvent()

    async def _expunge_api(self, msg: APIExpungeDataVolumeMsg) -> None:
        row = await self.load(msg.uuid)
        self.refuse_root(row, "expunge")
        self._require_deleted(row)
        await self.expunge(row, msg.require_auth())

    @handles(APIRecoverDataVolumeMsg)
    async def recover_api(self, msg: APIRecoverDataVolumeMsg) -> VolumeEvent:
        return await self.ctx.queues.run(volume_queue(msg.uuid), self._recover_api, msg)

    async def _recover_api(self, msg: APIRecoverDataVolumeMsg) -> VolumeEvent:
        row = await self.load(msg.uuid)
        self.refuse_root(row, "recover")
        return await self.recover_row(row, msg.require_auth())

    async def recover_row(self, row: VolumeVO, auth: AuthContext | None) -> VolumeEvent:
        self._require_deleted(row)
        status = (
            VolumeStatus.READY if row.install_path is not None else VolumeStatus.NOT_INSTANTIATED
        )
        await self.set_fields(row.uuid, status=status.value)
        return await self.event(row.uuid, "updated", auth)

    def _require_deleted(self, row: VolumeVO) -> None:
        if row.status != VolumeStatus.DELETED:
            raise ZError(
                VolumeErr.NOT_DELETED,
                f"volume {row.name} ({row.uuid}) is {row.status}, not Deleted: delete it first "
                "(with volume deletionPolicy Delay or Never)",
                uuid=row.uuid,
                status=row.status,
            )

    # ----- update, state ----------------------------------------------------------------

    @handles(APIUpdateVolumeMsg)
    async def update_api(self, msg: APIUpdateVolumeMsg) -> VolumeEvent:
        return await self.ctx.queues.run(volume_queue(msg.uuid), self._update_api, msg)

    async def _update_api(self, msg: APIUpdateVolumeMsg) -> VolumeEvent:
        # Column names, not wire names: messages serialize by alias by default.
        changes = msg.model_dump(include={"name", "description"}, exclude_none=True, by_alias=False)
        await self.update_fields(msg.uuid, changes)
        return await self.event(msg.uuid, "updated", msg.require_auth())

    @handles(APIChangeVolumeStateMsg)
    async def change_state_api(self, msg: APIChangeVolumeStateMsg) -> VolumeEvent:
        return await self.ctx.queues.run(volume_queue(msg.uuid), self._change_state_api, msg)

    async def _change_state_api(self, msg: APIChangeVolumeStateMsg) -> VolumeEvent:
        state = VolumeState.ENABLED if msg.state_event == "enable" else VolumeState.DISABLED
        await self.update_fields(msg.uuid, {"state": state.value})
        return await self.event(msg.uuid, "updated", msg.require_auth())
