"""NICs a network-service resource could be given (the candidate queries of security
groups, EIPs and port forwarding): NICs of live VMs on the given L3 networks, less those
excluded, each the caller may use, as inventories."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select

from zstackpy.api.messages import AuthContext
from zstackpy.api.ownership import may_use
from zstackpy.core.context import NodeContext
from zstackpy.services.vm.messages import VmNicInventory, VmState
from zstackpy.services.vm.models import VmInstanceVO, VmNicVO
from zstackpy.services.vm.records import NIC_LOAD_OPTIONS, nic_inventory

_GONE = [VmState.DESTROYED.value, VmState.EXPUNGING.value, VmState.DESTROYING.value]


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
        .where(VmNicVO.l3_network_uuid.in_(networks), VmInstanceVO.state.not_in(_GONE))
        .order_by(VmNicVO.create_date, VmNicVO.uuid)
    )
    if vm_uuid is not None:
        query = query.where(VmNicVO.vm_instance_uuid == vm_uuid)
    async with ctx.db.session() as session:
        rows = [n for n in (await session.execute(query)).scalars() if n.uuid not in skip]
        if not auth.is_admin:
            rows = [n for n in rows if await may_use(session, n.uuid, auth)]
        return [nic_inventory(n) for n in rows]
