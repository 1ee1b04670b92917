"""What the query API serves of virtual routers: offerings (an instance offering with its
appliance part) and appliance VMs (a VM with its appliance part), with ZStack's edges."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import selectinload

from zstackpy.api.query import Expansion, QueryableResource
from zstackpy.core.context import NodeContext
from zstackpy.core.errors import SysErr, ZError
from zstackpy.core.plugin import PluginRegistry
from zstackpy.services.offering.messages import InstanceOfferingInventory
from zstackpy.services.offering.models import InstanceOfferingVO
from zstackpy.services.virtualrouter.messages import (
    ApplianceVmInventory,
    VirtualRouterOfferingInventory,
    VirtualRouterVmInventory,
)
from zstackpy.services.virtualrouter.models import ApplianceVmVO, VirtualRouterOfferingVO
from zstackpy.services.vm.models import VmInstanceVO, VmNicVO
from zstackpy.services.vm.records import vm_inventory


def offering_inventory(
    row: VirtualRouterOfferingVO, offering: InstanceOfferingVO
) -> VirtualRouterOfferingInventory:
    base = InstanceOfferingInventory.model_validate(offering, from_attributes=True)
    return VirtualRouterOfferingInventory(
        **base.model_dump(),
        management_network_uuid=row.management_network_uuid,
        public_network_uuid=row.public_network_uuid,
        zone_uuid=row.zone_uuid,
        is_default=row.is_default,
        image_uuid=row.image_uuid,
    )


def _offering_row(row: VirtualRouterOfferingVO) -> VirtualRouterOfferingInventory | None:
    if row.offering is None:
        return None  # deleted between the query's statements
    return offering_inventory(row, row.offering)


def _router_row(row: ApplianceVmVO) -> VirtualRouterVmInventory | None:
    if row.vm is None:
        return None  # the router was deleted between the query's statements
    base = vm_inventory(row.vm)
    return VirtualRouterVmInventory(
        **{name: getattr(base, name) for name in type(base).model_fields},
        appliance_vm_type=row.appliance_vm_type,
        management_network_uuid=row.management_network_uuid,
        default_route_l3_network_uuid=row.default_route_l3_network_uuid,
        status=row.status,
        agent_port=row.agent_port,
        public_network_uuid=row.public_network_uuid,
    )


def _appliance_row(row: ApplianceVmVO) -> ApplianceVmInventory | None:
    full = _router_row(row)
    if full is None:
        return None
    return ApplianceVmInventory(
        **{name: getattr(full, name) for name in ApplianceVmInventory.model_fields}
    )


def _vm_column(column: Any) -> Any:
    return select(column).where(VmInstanceVO.uuid == ApplianceVmVO.uuid).scalar_subquery()


def _offering_column(column: Any) -> Any:
    return (
        select(column)
        .where(InstanceOfferingVO.uuid == VirtualRouterOfferingVO.uuid)
        .scalar_subquery()
    )


_VM_LOAD = (
    selectinload(ApplianceVmVO.vm).selectinload(VmInstanceVO.vm_nics).selectinload(VmNicVO.used_ip),
    selectinload(ApplianceVmVO.vm).selectinload(VmInstanceVO.all_volumes),
)
# The VM's own fields, queryable on an appliance (its row holds only the appliance part;
# its own columns are queryable by name).
_VM_COLUMNS: dict[str, ColumnElement[Any]] = {
    "name": _vm_column(VmInstanceVO.name),
    "state": _vm_column(VmInstanceVO.state),
    "hostUuid": _vm_column(VmInstanceVO.host_uuid),
    "zoneUuid": _vm_column(VmInstanceVO.zone_uuid),
    "clusterUuid": _vm_column(VmInstanceVO.cluster_uuid),
    "imageUuid": _vm_column(VmInstanceVO.image_uuid),
    "type": _vm_column(VmInstanceVO.type),
}
_APPLIANCE_EDGES = {
    "vmNics": Expansion("VmNic", "uuid", "vmInstanceUuid"),
    "zone": Expansion("Zone", "zoneUuid", "uuid"),
    "host": Expansion("Host", "hostUuid", "uuid"),
}

_OFFERING_COLUMNS: dict[str, ColumnElement[Any]] = {
    "name": _offering_column(InstanceOfferingVO.name),
    "state": _offering_column(InstanceOfferingVO.state),
}

VIRTUAL_ROUTER_OFFERING = QueryableResource(
    name="VirtualRouterOffering",
    model=VirtualRouterOfferingVO,
    inventory=VirtualRouterOfferingInventory,
    columns=_OFFERING_COLUMNS,
    expansions={
        "zone": Expansion("Zone", "zoneUuid", "uuid"),
        "image": Expansion("Image", "imageUuid", "uuid"),
    },
    to_inventory=_offering_row,
    load_options=(selectinload(VirtualRouterOfferingVO.offering),),
)
APPLIANCE_VM = QueryableResource(
    name="ApplianceVm",
    model=ApplianceVmVO,
    inventory=ApplianceVmInventory,
    columns=_VM_COLUMNS,
    expansions=dict(_APPLIANCE_EDGES),
    to_inventory=_appliance_row,
    load_options=_VM_LOAD,
)
VIRTUAL_ROUTER_VM = QueryableResource(
    name="VirtualRouterVm",
    model=ApplianceVmVO,
    inventory=VirtualRouterVmInventory,
    columns=_VM_COLUMNS,
    expansions=dict(_APPLIANCE_EDGES),
    to_inventory=_router_row,
    load_options=_VM_LOAD,
)


async def appliance_inventory(ctx: NodeContext, uuid: str) -> ApplianceVmInventory:
    async with ctx.db.session() as session:
        row = (
            await session.execute(
                select(ApplianceVmVO).options(*_VM_LOAD).where(ApplianceVmVO.uuid == uuid)
            )
        ).scalar_one_or_none()
        inventory = _appliance_row(row) if row is not None else None
        if inventory is None:
            raise ZError(SysErr.RESOURCE_NOT_FOUND, f"no appliance VM with uuid {uuid}", uuid=uuid)
        return inventory


def register_queries(registry: PluginRegistry) -> None:
    registry.add_queryable(VIRTUAL_ROUTER_OFFERING)
    registry.add_queryable(APPLIANCE_VM)
    registry.add_queryable(VIRTUAL_ROUTER_VM)
