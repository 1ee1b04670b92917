"""What deleting other resources does to VMs (ZStack's VmCascadeExtension):

- a zone: its VMs are destroyed and expunged (DeleteVmMsg), whatever the deletion policy;
- a host: its VMs are stopped there (StopVmOnDeletedHostMsg) and left Stopped with no host;
- an L3 network or an IP range: the NICs on it are detached from their VMs
  (DetachNicFromVmMsg; the network's own delete removes their addresses);
- a cluster: its hosts' cascades stop the VMs; Stopped VMs forget it (ON DELETE SET NULL);
- an image or an instance offering: nothing (the VM's reference becomes NULL).

Hosts are not the VMs' parents, so a host's "children" here are a stand-in: the host
uuids under the type ``VMS_ON_HOSTS``, so deleting them stops VMs and deletes nothing.
"""

from __future__ import annotations

from sqlalchemy import select

from zstackpy.core.bus.message import NeedReplyMessage
from zstackpy.core.cascade import CascadeChildren, DeleteMode
from zstackpy.core.service import Service
from zstackpy.services.network.models import UsedIpVO
from zstackpy.services.vm.messages import (
    VM_RESOURCE_TYPE,
    DeleteVmMsg,
    DetachNicFromVmMsg,
    StopVmOnDeletedHostMsg,
)
from zstackpy.services.vm.models import VmInstanceVO, VmNicVO
from zstackpy.services.vm.nics import NIC_RESOURCE_TYPE

ZONE_TYPE = "ZoneVO"
HOST_TYPE = "HostVO"
L3_TYPE = "L3NetworkVO"
IP_RANGE_TYPE = "IpRangeVO"
VMS_ON_HOSTS = "VmInstanceVO(on HostVO)"
_PARALLELISM = 8
_TIMEOUT_S = 3600.0  # an expunge deletes volumes on storage


class VmCascadeService(Service):
    """The VM domain's CascadeParticipant; handles no messages itself."""

    name = "vmCascade"

    async def cascade_children(
        self, parent_type: str, parent_uuids: tuple[str, ...]
    ) -> CascadeChildren | None:
        if parent_type == HOST_TYPE:
            return CascadeChildren(VMS_ON_HOSTS, parent_uuids)
        async with self.ctx.db.session() as session:
            if parent_type == ZONE_TYPE:
                rows = await session.execute(
                    select(VmInstanceVO.uuid).where(VmInstanceVO.zone_uuid.in_(parent_uuids))
                )
                return CascadeChildren(VM_RESOURCE_TYPE, tuple(rows.scalars()))
            if parent_type == L3_TYPE:
                rows = await session.execute(
                    select(VmNicVO.uuid).where(VmNicVO.l3_network_uuid.in_(parent_uuids))
                )
                return CascadeChildren(NIC_RESOURCE_TYPE, tuple(rows.scalars()))
            if parent_type == IP_RANGE_TYPE:
                rows = await session.execute(
                    select(VmNicVO.uuid)
                    .join(UsedIpVO, UsedIpVO.uuid == VmNicVO.used_ip_uuid)
                    .where(UsedIpVO.ip_range_uuid.in_(parent_uuids))
                )
                return CascadeChildren(NIC_RESOURCE_TYPE, tuple(rows.scalars()))
        return None

    async def cascade_check(self, children: CascadeChildren) -> None:
        """VMs never refuse: ZStack deletes, stops or detaches them."""

    async def cascade_delete(self, children: CascadeChildren, mode: DeleteMode) -> None:
        msgs: list[NeedReplyMessage] = []
        async with self.ctx.db.session() as session:
            if children.resource_type == VM_RESOURCE_TYPE:
                msgs = [DeleteVmMsg(vm_instance_uuid=u) for u in children.uuids]
            elif children.resource_type == VMS_ON_HOSTS:
                rows = await session.execute(
                    select(VmInstanceVO.uuid, VmInstanceVO.host_uuid).where(
                        VmInstanceVO.host_uuid.in_(children.uuids)
                    )
                )
                msgs = [
                    StopVmOnDeletedHostMsg(vm_instance_uuid=vm, host_uuid=host)
                    for vm, host in rows.all()
                    if host is not None
                ]
            elif children.resource_type == NIC_RESOURCE_TYPE:
                rows = await session.execute(
                    select(VmNicVO.uuid, VmNicVO.vm_instance_uuid).where(
                        VmNicVO.uuid.in_(children.uuids)
                    )
                )
                # The L3's own delete removes its addresses: only the NIC rows go here.
                msgs = [
                    DetachNicFromVmMsg(vm_instance_uuid=vm, vm_nic_uuid=nic, release_ip=False)
                    for nic, vm in rows.all()
                ]
        replies = await self.ctx.bus.call_many(msgs, parallelism=_PARALLELISM, timeout=_TIMEOUT_S)
        for reply in replies:
            reply.raise_if_error()
