"""NICs a network-service resource could be given (the candidate queries of security
groups, EIPs and port forwarding): NICs of live user VMs (not appliances: a router is not
its own client) on the given L3 networks, less those excluded, each the caller may use,
as inventories."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select

from zstackpy.api.messages import AuthContext
from zstackpy.api.ownership import may_use
from zstackpy.core.context import NodeContext
from zstackpy.core.errors import SysErr, ZError
from zstackpy.services.network.models import NetworkServiceL3NetworkRefVO
from zstackpy.services.vm.messages import VmNicInventory, VmState
from zstackpy.services.vm.models import VmInstanceVO, VmNicVO
from zstackpy.services.vm.records import NIC_LOAD_OPTIONS, nic_inventory

_GONE = [VmState.DESTROYED.value, VmState.EXPUNGING.value, VmState.DESTROYING.value]
_USER_VM = "UserVm"
# What makes a NIC a candidate, besides its network.
_LIVE_USER_VM = (VmInstanceVO.state.not_in(_GONE), VmInstanceVO.type == _USER_VM)


async def networks_with(ctx: NodeContext, service_type: str) -> set[str]:
    """The L3 networks some provider serves ``service_type`` on."""
    async with ctx.db.session() as session:
        rows = await session.execute(
            select(NetworkServiceL3NetworkRefVO.l3_network_uuid).where(
                NetworkServiceL3NetworkRefVO.network_service_type == service_type
            )
        )
        return set(rows.scalars())


async def candidate_nic(ctx: NodeContext, nic_uuid: str) -> VmNicVO | None:
    """The NIC if it could be given a resource (a live user VM's), else None; SYS.1003
    when there is no such NIC."""
    async with ctx.db.session() as session:
        row = (
            await session.execute(
                select(VmNicVO, VmInstanceVO.state, VmInstanceVO.type)
                .join(VmInstanceVO, VmInstanceVO.uuid == VmNicVO.vm_instance_uuid)
                .where(VmNicVO.uuid == nic_uuid)
            )
        ).one_or_none()
    if row is None:
        raise ZError(SysErr.RESOURCE_NOT_FOUND, f"no VM NIC with uuid {nic_uuid}", uuid=nic_uuid)
    nic, state, vm_type = row
    return nic if state not in _GONE and vm_type == _USER_VM else None


async def candidate_nics(
    ctx: NodeContext,
    auth: AuthContext,
    l3_uuids: Iterable[str],
    excluded: Iterable[str] = (),
    vm_uuid: str | None = None,
) -> list[VmNicInventory]:
    networks = sorted(set(l3_uuids))
    if not networks:
        return []
    skip = set(excluded)
    query = (
        select(VmNicVO)
        .join(VmInstanceVO, VmInstanceVO.uuid == VmNicVO.vm_instance_uuid)
        .options(*NIC_LOAD_OPTIONS)
        .where(VmNicVO.l3_network_uuid.in_(networks), *_LIVE_USER_VM)
        .order_by(VmNicVO.create_date, VmNicVO.uuid)
    )
    if vm_uuid is not None:
        query = query.where(VmNicVO.vm_instance_uuid == vm_uuid)
    async with ctx.db.session() as session:
        rows = [n for n in (await session.execute(query)).scalars() if n.uuid not in skip]
        if not auth.is_admin:
            rows = [n for n in rows if await may_use(session, n.uuid, auth)]
        return [nic_inventory(n) for n in rows]
