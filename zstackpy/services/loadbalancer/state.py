"""A load balancer as its backend applies it, read from the database (``current``), and
the checks of NICs joining it."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from zstackpy.core.context import NodeContext
from zstackpy.core.errors import SysErr, ZError
from zstackpy.services.loadbalancer.messages import (
    BackendNic,
    ListenerTO,
    LoadBalancerErr,
    LoadBalancerTO,
)
from zstackpy.services.loadbalancer.models import LoadBalancerListenerVO, LoadBalancerVO
from zstackpy.services.vip.models import VipVO
from zstackpy.services.vm.models import VmInstanceVO, VmNicVO


async def current(ctx: NodeContext, lb_uuid: str) -> tuple[LoadBalancerTO, dict[str, str]]:
    """The load balancer with every listener and backend, and each backend NIC's L3
    network (SYS.1003 when it does not exist)."""
    async with ctx.db.session() as session:
        lb = (
            await session.execute(
                select(LoadBalancerVO)
                .options(
                    selectinload(LoadBalancerVO.listeners).selectinload(
                        LoadBalancerListenerVO.vm_nic_refs
                    )
                )
                .where(LoadBalancerVO.uuid == lb_uuid)
            )
        ).scalar_one_or_none()
        if lb is None:
            raise ZError(
                SysErr.RESOURCE_NOT_FOUND, f"no load balancer with uuid {lb_uuid}", uuid=lb_uuid
            )
        vip = await session.get(VipVO, lb.vip_uuid)
        nic_uuids = {r.vm_nic_uuid for li in lb.listeners for r in li.vm_nic_refs}
        nics = {
            n.uuid: n
            for n in (
                await session.execute(select(VmNicVO).where(VmNicVO.uuid.in_(nic_uuids)))
            ).scalars()
        }
    to = LoadBalancerTO(
        lb_uuid=lb.uuid,
        vip_ip=vip.ip if vip is not None else "",
        vip_l3_network_uuid=vip.l3_network_uuid if vip is not None else "",
        vip_enabled=vip is not None and vip.state == "Enabled",
        listeners=[
            ListenerTO(
                listener_uuid=li.uuid,
                protocol=li.protocol,
                load_balancer_port=li.load_balancer_port,
                instance_port=li.instance_port,
                nics=[
                    BackendNic(uuid=n.uuid, ip=n.ip, mac=n.mac)
                    for n in (nics.get(r.vm_nic_uuid) for r in li.vm_nic_refs)
                    if n is not None
                ],
            )
            for li in lb.listeners
        ],
    )
    return to, {uuid: nic.l3_network_uuid for uuid, nic in nics.items()}


def has_backends(to: LoadBalancerTO) -> bool:
    return any(li.nics for li in to.listeners)


def applied(to: LoadBalancerTO) -> LoadBalancerTO:
    """What a backend is given: the listeners that have backends."""
    return to.model_copy(update={"listeners": [li for li in to.listeners if li.nics]})


async def joining_nics(
    ctx: NodeContext, to: LoadBalancerTO, l3_of: dict[str, str], nic_uuids: list[str]
) -> tuple[list[BackendNic], str]:
    """The NICs joining, checked, and the one L3 network every backend of the load
    balancer is on: SYS.1003 for a NIC that does not exist, LB.1003 for one on the VIP's
    network or of an appliance, LB.1002 when they are not all on one network."""
    async with ctx.db.session() as session:
        rows = (
            await session.execute(
                select(VmNicVO, VmInstanceVO.type)
                .join(VmInstanceVO, VmInstanceVO.uuid == VmNicVO.vm_instance_uuid)
                .where(VmNicVO.uuid.in_(nic_uuids))
            )
        ).all()
    found = {nic.uuid: (nic, vm_type) for nic, vm_type in rows}
    missing = sorted(set(nic_uuids) - set(found))
    if missing:
        raise ZError(
            SysErr.RESOURCE_NOT_FOUND,
            f"no VM NIC with uuid {', '.join(missing)}",
            uuids=missing,
        )
    for nic, vm_type in found.values():
        if nic.l3_network_uuid == to.vip_l3_network_uuid or vm_type != "UserVm":
            raise ZError(
                LoadBalancerErr.NIC_UNUSABLE,
                f"VM NIC {nic.uuid} cannot be a backend: it is on the VIP's network or "
                "belongs to an appliance",
                vmNicUuid=nic.uuid,
            )
    networks = set(l3_of.values()) | {nic.l3_network_uuid for nic, _t in found.values()}
    if len(networks) != 1:
        raise ZError(
            LoadBalancerErr.OTHER_NETWORK,
            f"the backends of load balancer {to.lb_uuid} must be on one L3 network, not "
            f"{', '.join(sorted(networks))}",
            l3NetworkUuids=sorted(networks),
        )
    joining = [BackendNic(uuid=n.uuid, ip=n.ip, mac=n.mac) for n, _t in found.values()]
    return joining, networks.pop()
