"""What the query API serves of load balancers (listeners nested) and listeners (their
backend NICs nested), with ZStack's join edges."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from zstackpy.api.query import Expansion, QueryableResource
from zstackpy.core.context import NodeContext
from zstackpy.core.errors import SysErr, ZError
from zstackpy.core.plugin import PluginRegistry
from zstackpy.services.loadbalancer.messages import (
    LoadBalancerInventory,
    LoadBalancerListenerInventory,
    LoadBalancerListenerVmNicRefInventory,
)
from zstackpy.services.loadbalancer.models import (
    LoadBalancerListenerVmNicRefVO,
    LoadBalancerListenerVO,
    LoadBalancerVO,
)


def _listener(row: LoadBalancerListenerVO) -> LoadBalancerListenerInventory:
    return LoadBalancerListenerInventory(
        uuid=row.uuid,
        name=row.name,
        description=row.description,
        load_balancer_uuid=row.load_balancer_uuid,
        instance_port=row.instance_port,
        load_balancer_port=row.load_balancer_port,
        protocol=row.protocol,
        create_date=row.create_date,
        last_op_date=row.last_op_date,
        vm_nic_refs=[
            LoadBalancerListenerVmNicRefInventory.model_validate(r, from_attributes=True)
            for r in row.vm_nic_refs
        ],
    )


def _load_balancer(row: LoadBalancerVO) -> LoadBalancerInventory:
    return LoadBalancerInventory(
        uuid=row.uuid,
        name=row.name,
        description=row.description,
        state=row.state,
        type=row.type,
        vip_uuid=row.vip_uuid,
        create_date=row.create_date,
        last_op_date=row.last_op_date,
        listeners=[_listener(li) for li in row.listeners],
    )


_LISTENER_LOAD = (selectinload(LoadBalancerListenerVO.vm_nic_refs),)
_LB_LOAD = (
    selectinload(LoadBalancerVO.listeners).selectinload(LoadBalancerListenerVO.vm_nic_refs),
)

LOAD_BALANCER = QueryableResource(
    name="LoadBalancer",
    model=LoadBalancerVO,
    inventory=LoadBalancerInventory,
    expansions={
        "vip": Expansion("Vip", "vipUuid", "uuid"),
        "listeners": Expansion("LoadBalancerListener", "uuid", "loadBalancerUuid"),
    },
    to_inventory=_load_balancer,
    load_options=_LB_LOAD,
)
LISTENER = QueryableResource(
    name="LoadBalancerListener",
    model=LoadBalancerListenerVO,
    inventory=LoadBalancerListenerInventory,
    expansions={
        "loadBalancer": Expansion("LoadBalancer", "loadBalancerUuid", "uuid"),
        "vmNicRef": Expansion("LoadBalancerListenerVmNicRef", "uuid", "listenerUuid", hidden=True),
    },
    to_inventory=_listener,
    load_options=_LISTENER_LOAD,
)
NIC_REF = QueryableResource(
    name="LoadBalancerListenerVmNicRef",
    model=LoadBalancerListenerVmNicRefVO,
    inventory=LoadBalancerListenerVmNicRefInventory,
    expansions={
        "listener": Expansion("LoadBalancerListener", "listenerUuid", "uuid"),
        "vmNic": Expansion("VmNic", "vmNicUuid", "uuid"),
    },
)


async def load_balancer_inventory(ctx: NodeContext, uuid: str) -> LoadBalancerInventory:
    async with ctx.db.session() as session:
        row = (
            await session.execute(
                select(LoadBalancerVO).options(*_LB_LOAD).where(LoadBalancerVO.uuid == uuid)
            )
        ).scalar_one_or_none()
        if row is None:
            raise ZError(SysErr.RESOURCE_NOT_FOUND, f"no load balancer with uuid {uuid}")
        return _load_balancer(row)


async def listener_inventory(ctx: NodeContext, uuid: str) -> LoadBalancerListenerInventory:
    async with ctx.db.session() as session:
        row = (
            await session.execute(
                select(LoadBalancerListenerVO)
                .options(*_LISTENER_LOAD)
                .where(LoadBalancerListenerVO.uuid == uuid)
            )
        ).scalar_one_or_none()
        if row is None:
            raise ZError(SysErr.RESOURCE_NOT_FOUND, f"no listener with uuid {uuid}")
        return _listener(row)


def register_queries(registry: PluginRegistry) -> None:
    registry.add_queryable(LOAD_BALANCER)
    registry.add_queryable(LISTENER)
    registry.add_queryable(NIC_REF)
    registry.add_query_expansion(
        "Vip", "loadBalancer", Expansion("LoadBalancer", "uuid", "vipUuid")
    )
    registry.add_query_expansion(
        "VmNic",
        "loadBalancerListenerRef",
        Expansion("LoadBalancerListenerVmNicRef", "uuid", "vmNicUuid", hidden=True),
    )
