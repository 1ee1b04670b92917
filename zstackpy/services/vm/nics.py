"""VM NICs: addresses from the IPAM service, rows with unique MACs, and their release.

A NIC's address is allocated (AllocateIpMsg, in its L3's queue) before its row exists, and
released (ReleaseIpMsg) after its row is gone; both messages are idempotent on the IPAM
side, so a rollback may release what it recorded without knowing how far a run got.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from zstackpy.api.messages import AuthContext
from zstackpy.api.ownership import add_resource, remove_resources
from zstackpy.core.context import NodeContext
from zstackpy.core.errors import SysErr, ZError
from zstackpy.services.network.inventories import UsedIpInventory
from zstackpy.services.network.messages import AllocateIpMsg, AllocateIpReply, ReleaseIpMsg
from zstackpy.services.vm.extensions import VmNicDeletionExtension, VmNicsDeletion
from zstackpy.services.vm.models import VmNicVO

NIC_RESOURCE_TYPE = "VmNicVO"
# ZStack's IpAllocatedReason for a VM NIC's address.
USED_FOR_VM = "Vm"
# A random MAC collides with one in use about never; a few tries make "never" certain.
MAC_ATTEMPTS = 8


def random_mac() -> str:
    """ZStack's form: ``fa:`` then five random bytes (a locally administered, unicast
    address, so it never clashes with a vendor's)."""
    return "fa:" + ":".join(f"{b:02x}" for b in secrets.token_bytes(5))


def internal_name(internal_id: int, device_id: int) -> str:
    """The NIC's name on the host (the tap device): ``vnic<vm internal id>.<device id>``."""
    return f"vnic{internal_id}.{device_id}"


@dataclass(slots=True)
class AllocatedIp:
    """An address allocated for a NIC that may not have a row yet."""

    nic_uuid: str
    device_id: int
    ip: UsedIpInventory


async def allocate_ip(
    ctx: NodeContext, l3_uuid: str, nic_uuid: str, required_ip: str | None = None
) -> UsedIpInventory:
    """One address of ``l3_uuid`` for NIC ``nic_uuid`` (``required_ip`` exactly, if given).
    L3.1005 when the L3 is full, L3.1003 when the required address is not free."""
    reply = await ctx.bus.request(
        AllocateIpMsg(
            l3_network_uuid=l3_uuid,
            required_ip=required_ip,
            used_for=USED_FOR_VM,
            vm_nic_uuid=nic_uuid,
        ),
        AllocateIpReply,
    )
    if reply.ip is None:
        raise ZError(SysErr.INTERNAL, f"the IPAM service answered no address for {l3_uuid}")
    return reply.ip


async def release_ip(ctx: NodeContext, l3_uuid: str, used_ip_uuid: str) -> None:
    reply = await ctx.bus.call(ReleaseIpMsg(l3_network_uuid=l3_uuid, used_ip_uuid=used_ip_uuid))
    reply.raise_if_error()


async def insert_nics(
    ctx: NodeContext,
    vm_uuid: str,
    internal_id: int,
    hypervisor_type: str | None,
    ips: list[AllocatedIp],
    auth: AuthContext | None,
) -> list[VmNicVO]:
    """Rows (and ResourceVO rows) for the NICs, in one transaction; a MAC that collides
    with another NIC's makes every MAC of the batch be drawn again."""

    async def insert(session: AsyncSession) -> list[VmNicVO]:
        rows = [
            VmNicVO(
                uuid=a.nic_uuid,
                vm_instance_uuid=vm_uuid,
                l3_network_uuid=a.ip.l3_network_uuid,
                used_ip_uuid=a.ip.uuid,
                ip=a.ip.ip,
                netmask=a.ip.netmask,
                gateway=a.ip.gateway,
                ip_version=a.ip.ip_version,
                mac=random_mac(),
                device_id=a.device_id,
                internal_name=internal_name(internal_id, a.device_id),
                hypervisor_type=hypervisor_type,
                driver_type="virtio",
                type="VNIC",
                state="enable",
            )
            for a in ips
        ]
        session.add_all(rows)
        for row in rows:
            add_resource(
                session,
                uuid=row.uuid,
                resource_type=NIC_RESOURCE_TYPE,
                name=row.internal_name,
                auth=auth,
            )
        return rows

    for _ in range(MAC_ATTEMPTS):
        try:
            return await ctx.db.write(insert)
        except IntegrityError:
            continue
    raise ZError(
        SysErr.CREATE_RESOURCE,
        f"could not give the NICs of VM {vm_uuid} unique MAC addresses",
        uuid=vm_uuid,
        attempts=MAC_ATTEMPTS,
    )


async def nics_deleting(ctx: NodeContext, vm_uuid: str, nic_uuids: list[str]) -> None:
    """Tell every ``VmNicDeletionExtension`` these NICs are going (in the VM's queue,
    before anything else of their deletion); raises the first refusal."""
    if not nic_uuids:
        return
    event = VmNicsDeletion(vm_uuid=vm_uuid, nic_uuids=tuple(nic_uuids))
    for extension in ctx.plugins.extensions(VmNicDeletionExtension):
        await extension.vm_nics_deleting(event)


async def delete_nic_rows(ctx: NodeContext, nic_uuids: list[str]) -> None:
    if not nic_uuids:
        return
    async with ctx.db.session() as session, session.begin():
        await session.execute(delete(VmNicVO).where(VmNicVO.uuid.in_(nic_uuids)))
        await remove_resources(session, nic_uuids)


async def release_nics(ctx: NodeContext, nics: list[VmNicVO]) -> None:
    """Delete the NICs' rows, then give their addresses back."""
    await delete_nic_rows(ctx, [n.uuid for n in nics])
    for nic in nics:
        if nic.used_ip_uuid is not None:
            await release_ip(ctx, nic.l3_network_uuid, nic.used_ip_uuid)
