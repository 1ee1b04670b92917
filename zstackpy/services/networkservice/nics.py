"""Where a NIC served by a network service (an EIP, a port-forwarding rule) is: the NIC,
its VM, and the host running the VM (if any), read for an attach or detach. A VM counts
as on its host in every state in which the host holds its devices (Running, Paused, and
the transitions between)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from zstackpy.core.context import NodeContext
from zstackpy.core.errors import SysErr, ZError
from zstackpy.services.vm.extensions import VmHost, VmNicSpec
from zstackpy.services.vm.models import VmInstanceVO, VmNicVO
from zstackpy.services.vm.records import nic_specs, vm_host
from zstackpy.services.vm.states import ON_HOST

_ON_HOST = {s.value for s in ON_HOST}


@dataclass(frozen=True, slots=True)
class NicPlace:
    nic: VmNicSpec
    vm_uuid: str
    host: VmHost | None  # None: the VM runs nowhere, nothing to NAT now


async def nic_place(ctx: NodeContext, nic_uuid: str) -> NicPlace:
    async with ctx.db.session() as session:
        row = (
            await session.execute(
                select(VmNicVO, VmInstanceVO)
                .join(VmInstanceVO, VmInstanceVO.uuid == VmNicVO.vm_instance_uuid)
                .where(VmNicVO.uuid == nic_uuid)
            )
        ).one_or_none()
    if row is None:
        raise ZError(SysErr.RESOURCE_NOT_FOUND, f"no VM NIC with uuid {nic_uuid}", uuid=nic_uuid)
    nic, vm = row
    (spec,) = await nic_specs(ctx, [nic], vm.default_l3_network_uuid)
    host = None
    if vm.host_uuid is not None and vm.state in _ON_HOST:
        host = await vm_host(ctx, vm.host_uuid)
    return NicPlace(nic=spec, vm_uuid=vm.uuid, host=host)
