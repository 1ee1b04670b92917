"""UpdateVmInstance and ChangeInstanceOffering, in the VM's queue (the caller holds it).
Name, description, platform and default L3 change in any state but Expunging; CPU and
memory only while the VM is Stopped (it holds no capacity then, so nothing to re-reserve).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from zstackpy.api.ownership import may_use, rename_resource
from zstackpy.core.context import NodeContext
from zstackpy.core.errors import SysErr, ZError
from zstackpy.services.offering.messages import DEFAULT_HOST_ALLOCATOR_STRATEGY
from zstackpy.services.offering.models import InstanceOfferingVO
from zstackpy.services.vm.api import APIChangeInstanceOfferingMsg, APIUpdateVmInstanceMsg
from zstackpy.services.vm.messages import VmErr
from zstackpy.services.vm.models import VmInstanceVO, VmNicVO
from zstackpy.services.vm.records import load_vm, require_vm
from zstackpy.services.vm.states import VmOp, require_state


async def update(ctx: NodeContext, msg: APIUpdateVmInstanceMsg) -> None:
    vm = await load_vm(ctx, msg.uuid)
    require_state(msg.uuid, vm.state, VmOp.UPDATE)
    if msg.state is not None:
        # ZStack lets an admin overwrite the recorded state; here the hosts' reports do
        # that (state sync), so a state that no host confirmed is never written.
        raise ZError(
            VmErr.INVALID_SPEC,
            "UpdateVmInstance does not set a VM's state: start or stop it",
            uuid=msg.uuid,
            state=msg.state,
        )
    changes: dict[str, Any] = msg.model_dump(
        include={
            "name",
            "description",
            "platform",
            "default_l3_network_uuid",
            "cpu_num",
            "memory_size",
            "reserved_memory_size",
            "guest_os_type",
        },
        exclude_none=True,
        by_alias=False,
    )
    if changes.keys() & {"cpu_num", "memory_size", "reserved_memory_size"}:
        require_state(msg.uuid, vm.state, VmOp.CHANGE_SIZE)
    async with ctx.db.session() as session, session.begin():
        row = await require_vm(session, msg.uuid)
        default_l3 = changes.get("default_l3_network_uuid")
        if default_l3 is not None:
            nic = await session.scalar(
                select(VmNicVO.uuid).where(
                    VmNicVO.vm_instance_uuid == msg.uuid, VmNicVO.l3_network_uuid == default_l3
                )
            )
            if nic is None:
                raise ZError(
                    VmErr.INVALID_SPEC,
                    f"VM {msg.uuid} has no NIC on L3 network {default_l3}",
                    uuid=msg.uuid,
                    defaultL3NetworkUuid=default_l3,
                )
        for name, value in changes.items():
            setattr(row, name, value)
        if "name" in changes:
            await rename_resource(session, msg.uuid, changes["name"])


async def change_offering(ctx: NodeContext, msg: APIChangeInstanceOfferingMsg) -> None:
    vm = await load_vm(ctx, msg.vm_instance_uuid)
    require_state(vm.uuid, vm.state, VmOp.CHANGE_SIZE)
    async with ctx.db.session() as session, session.begin():
        offering = await session.get(InstanceOfferingVO, msg.instance_offering_uuid)
        if offering is None or not await may_use(
            session, msg.instance_offering_uuid, msg.require_auth()
        ):
            raise ZError(
                SysErr.RESOURCE_NOT_FOUND,
                f"no instance offering with uuid {msg.instance_offering_uuid}",
                uuid=msg.instance_offering_uuid,
            )
        if offering.state != "Enabled":
            raise ZError(
                VmErr.RESOURCE_NOT_READY,
                f"instance offering {offering.uuid} is {offering.state}",
                uuid=offering.uuid,
                state=offering.state,
            )
        row: VmInstanceVO = await require_vm(session, vm.uuid)
        row.instance_offering_uuid = offering.uuid
        row.cpu_num = offering.cpu_num
        row.cpu_speed = offering.cpu_speed
        row.memory_size = offering.memory_size
        row.reserved_memory_size = offering.reserved_memory_size
        row.allocator_strategy = offering.allocator_strategy or DEFAULT_HOST_ALLOCATOR_STRATEGY
