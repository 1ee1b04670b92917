"""Reading and changing VM rows the way every VM code path must: inventories with their
NICs and volumes, changes announced on the event stream (as the VM's owner account), and
the hypervisor backend and host a VM command goes to.

Functions that change a VM run inside the VM's work queue; they do not queue themselves
(the callers hold the queue).
"""

from __future__ import annotations

import logging
from functools import partial
from typing import Any, cast

from sqlalchemy import Table, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload, selectinload

from zstackpy.api.events import ResourceChangedEvent
from zstackpy.core.coalesce import BatchedReads, owned_by
from zstackpy.core.context import NodeContext
from zstackpy.core.db import Database, ResourceVO
from zstackpy.core.errors import SysErr, ZError
from zstackpy.services.host.models import HostVO
from zstackpy.services.network.inventories import UsedIpInventory
from zstackpy.services.network.messages import GetL3NetworksMsg, GetL3NetworksReply
from zstackpy.services.resource_service import Change
from zstackpy.services.vm.extensions import VmHost, VmHypervisorBackend, VmNicSpec
from zstackpy.services.vm.messages import (
    VM_RESOURCE_TYPE,
    VmInstanceInventory,
    VmNicInventory,
)
from zstackpy.services.vm.models import VmInstanceVO, VmNicVO
from zstackpy.services.volume.messages import (
    ListVmVolumesMsg,
    ListVmVolumesReply,
    VolumeInventory,
    VolumeView,
)

# What an inventory needs loaded: NICs with their addresses, and volumes.
VM_LOAD_OPTIONS = (
    selectinload(VmInstanceVO.vm_nics).selectinload(VmNicVO.used_ip),
    selectinload(VmInstanceVO.all_volumes),
)
NIC_LOAD_OPTIONS = (selectinload(VmNicVO.used_ip),)
# One VM: its NICs and addresses joined to its row, its volumes in a second statement
# (VM_LOAD_OPTIONS' three extra statements suit pages of many VMs, not one).
ONE_VM_LOAD_OPTIONS = (
    joinedload(VmInstanceVO.vm_nics).joinedload(VmNicVO.used_ip),
    selectinload(VmInstanceVO.all_volumes),
)

log = logging.getLogger(__name__)


def nic_inventory(row: VmNicVO) -> VmNicInventory:
    """The inventory of a NIC loaded with its address (NIC_LOAD_OPTIONS)."""
    inventory = VmNicInventory.model_validate(row, from_attributes=True)
    if row.used_ip is not None:
        inventory.used_ips = [UsedIpInventory.model_validate(row.used_ip, from_attributes=True)]
    return inventory


def vm_inventory(row: VmInstanceVO) -> VmInstanceInventory:
    """The inventory of a row loaded with VM_LOAD_OPTIONS."""
    fields: dict[str, Any] = {
        name: getattr(row, name)
        for name in VmInstanceInventory.model_fields
        if name not in ("vm_nics", "all_volumes", "vm_cd_roms") and hasattr(row, name)
    }
    return VmInstanceInventory(
        **fields,
        vm_nics=[nic_inventory(n) for n in row.vm_nics],
        all_volumes=[
            VolumeInventory.model_validate(v, from_attributes=True) for v in row.all_volumes
        ],
    )


async def require_vm(session: AsyncSession, vm_uuid: str) -> VmInstanceVO:
    row = await session.get(VmInstanceVO, vm_uuid)
    if row is None:
        raise ZError(SysErr.RESOURCE_NOT_FOUND, f"no VM with uuid {vm_uuid}", uuid=vm_uuid)
    return row


async def load_vm(ctx: NodeContext, vm_uuid: str) -> VmInstanceVO:
    """The VM's row (no nested rows); SYS.1003 when it does not exist."""
    async with ctx.db.session() as session:
        return await require_vm(session, vm_uuid)


async def load_nics(ctx: NodeContext, vm_uuid: str) -> list[VmNicVO]:
    async with ctx.db.session() as session:
        rows = await session.execute(
            select(VmNicVO).where(VmNicVO.vm_instance_uuid == vm_uuid).order_by(VmNicVO.device_id)
        )
        return list(rows.scalars())


async def set_fields(ctx: NodeContext, vm_uuid: str, **values: Any) -> None:
    """Change columns of the VM's row."""
    # On the table, not the mapped class: no session holds this VM's row to keep in step
    # (the ORM's synchronisation of loaded objects cost more than the statement).
    table = cast(Table, VmInstanceVO.__table__)  # declared as a FromClause; a Table at runtime
    change = update(table).where(table.c.uuid == vm_uuid).values(**values)

    async def write(session: AsyncSession) -> None:
        await session.execute(change)

    await ctx.db.write(write)


async def publish(
    ctx: NodeContext, vm_uuid: str, change: Change = "updated"
) -> VmInstanceInventory | None:
    """Announce the VM's current row to event-stream followers (as its owner account) and
    answer its inventory; None (and a "deleted" event) when the row is gone."""

    # One per node: a burst's announcements read their VMs together (core.coalesce).
    reads: BatchedReads[str, Announced] = owned_by(
        ctx.db, "vm.announced", lambda: BatchedReads(partial(_read_announced, ctx.db), _gone)
    )
    inventory, account = await reads.read(vm_uuid)
    event = ResourceChangedEvent(
        resource_type=VM_RESOURCE_TYPE,
        resource_uuid=vm_uuid,
        change="deleted" if inventory is None else change,
        account_uuid=account,
        inventory=inventory.model_dump(mode="json", by_alias=True) if inventory else None,
    )
    try:
        await ctx.bus.publish(event)
    except Exception:
        # The operation is done and its rows say so: a broker that cannot take the event
        # now (an outage) costs the event streams one line, not the operation's answer.
        log.warning("could not announce VM %s", vm_uuid, exc_info=True)
    return inventory


# The VM's inventory (None once its row is gone) and its owner account.
Announced = tuple[VmInstanceInventory | None, str | None]


async def _read_announced(db: Database, vm_uuids: list[str]) -> dict[str, Announced]:
    found = (
        select(VmInstanceVO, ResourceVO.account_uuid)
        .outerjoin(ResourceVO, ResourceVO.uuid == VmInstanceVO.uuid)
        .options(*ONE_VM_LOAD_OPTIONS)
        .where(VmInstanceVO.uuid.in_(vm_uuids))
    )

    async def read(session: AsyncSession) -> dict[str, Announced]:
        rows = (await session.execute(found)).unique().all()
        answers: dict[str, Announced] = {vm.uuid: (vm_inventory(vm), acc) for vm, acc in rows}
        gone = [uuid for uuid in vm_uuids if uuid not in answers]
        if gone:
            owners = await session.execute(
                select(ResourceVO.uuid, ResourceVO.account_uuid).where(ResourceVO.uuid.in_(gone))
            )
            accounts = {uuid: account for uuid, account in owners.all()}
            answers.update({uuid: (None, accounts.get(uuid)) for uuid in gone})
        return answers

    return await db.read(read)


def _gone(vm_uuid: str) -> ZError:  # never raised: every uuid asked gets an answer
    return ZError(SysErr.INTERNAL, f"VM {vm_uuid} went unanswered", uuid=vm_uuid)


def backend_for(ctx: NodeContext, hypervisor_type: str | None) -> VmHypervisorBackend:
    for backend in ctx.plugins.extensions(VmHypervisorBackend):
        if backend.hypervisor_type() == hypervisor_type:
            return backend
    raise ZError(
        SysErr.NO_CAPABILITY,
        f"no plugin runs VMs on {hypervisor_type} hosts",
        hypervisorType=hypervisor_type,
    )


async def vm_host(ctx: NodeContext, host_uuid: str) -> VmHost:
    """The host as VM commands need it; SYS.1003 when it is gone."""
    async with ctx.db.session() as session:
        row = (
            await session.execute(
                select(HostVO.uuid, HostVO.management_ip, HostVO.hypervisor_type).where(
                    HostVO.uuid == host_uuid
                )
            )
        ).one_or_none()
    if row is None:
        raise ZError(SysErr.RESOURCE_NOT_FOUND, f"no host with uuid {host_uuid}", uuid=host_uuid)
    return VmHost(
        uuid=row.uuid, management_ip=row.management_ip, hypervisor_type=row.hypervisor_type
    )


async def nic_specs(
    ctx: NodeContext, nics: list[VmNicVO], default_l3_uuid: str | None
) -> tuple[VmNicSpec, ...]:
    """The NICs as a hypervisor plugs them: each with its L3 network's bridge."""
    if not nics:
        return ()
    reply = await ctx.bus.request(
        GetL3NetworksMsg(l3_network_uuids=sorted({n.l3_network_uuid for n in nics})),
        GetL3NetworksReply,
    )
    bridges = {net.uuid: net.bridge_name for net in reply.networks}
    return tuple(
        VmNicSpec(
            uuid=n.uuid,
            l3_network_uuid=n.l3_network_uuid,
            mac=n.mac,
            ip=n.ip,
            netmask=n.netmask,
            gateway=n.gateway,
            device_id=n.device_id,
            internal_name=n.internal_name,
            bridge_name=bridges[n.l3_network_uuid],
            is_default=n.l3_network_uuid == default_l3_uuid,
            driver_type=n.driver_type,
        )
        for n in sorted(nics, key=lambda n: n.device_id)
    )


async def vm_volumes(ctx: NodeContext, vm_uuid: str) -> list[VolumeView]:
    """The VM's volumes, root first (the volume service's view)."""
    reply = await ctx.bus.request(ListVmVolumesMsg(vm_instance_uuid=vm_uuid), ListVmVolumesReply)
    return reply.volumes
