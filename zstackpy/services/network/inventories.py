"""API views of the network domain's resources (ZStack's ``*Inventory`` JSON shapes), and
how each is built from its table row."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field, SerializerFunctionWrapHandler, model_serializer
from sqlalchemy.orm import selectinload

from zstackpy.api.messages import Inventory
from zstackpy.services.network.models import (
    L2_VLAN,
    IpRangeVO,
    L2NetworkClusterRefVO,
    L2NetworkVO,
    L3NetworkDnsVO,
    L3NetworkVO,
    UsedIpVO,
)


class L2NetworkInventory(Inventory):
    """ZStack's L2NetworkInventory; a Vlan network also shows ``vlan`` (its
    L2VlanNetworkInventory), a NoVlan one has no such key."""

    uuid: str
    name: str
    description: str | None = None
    zone_uuid: str
    physical_interface: str
    type: str
    v_switch_type: str
    virtual_network_id: int
    isolated: bool
    pvlan: str | None = None
    create_date: datetime
    last_op_date: datetime
    attached_cluster_uuids: list[str] = Field(default_factory=list)
    vlan: int | None = None

    @model_serializer(mode="wrap")
    def _without_vlan_of_novlan(self, handler: SerializerFunctionWrapHandler) -> Any:
        data = handler(self)
        if isinstance(data, dict) and data.get("vlan", 0) is None:
            del data["vlan"]
        return data


class L2NetworkClusterRefInventory(Inventory):
    id: int
    l2_network_uuid: str
    cluster_uuid: str
    l2_provider_type: str
    create_date: datetime
    last_op_date: datetime


class IpRangeInventory(Inventory):
    uuid: str
    l3_network_uuid: str
    name: str
    description: str | None = None
    start_ip: str
    end_ip: str
    netmask: str
    gateway: str
    network_cidr: str
    ip_version: int
    address_mode: str | None = None
    prefix_len: int
    ip_range_type: str
    create_date: datetime
    last_op_date: datetime


class L3NetworkInventory(Inventory):
    uuid: str
    name: str
    description: str | None = None
    type: str
    zone_uuid: str
    l2_network_uuid: str
    state: str
    dns_domain: str | None = None
    system: bool
    category: str
    ip_version: int
    enable_ipam: bool = Field(alias="enableIPAM")
    isolated: bool
    create_date: datetime
    last_op_date: datetime
    dns: list[str] = Field(default_factory=list)
    ip_ranges: list[IpRangeInventory] = Field(default_factory=list)
    network_services: list[NetworkServiceL3NetworkRefInventory] = Field(default_factory=list)
    # Host routes and reserved ranges are not modelled yet: always empty.
    host_route: list[dict[str, Any]] = Field(default_factory=list)
    reserved_ip_ranges: list[dict[str, Any]] = Field(default_factory=list)


class NetworkServiceL3NetworkRefInventory(Inventory):
    l3_network_uuid: str
    network_service_provider_uuid: str
    network_service_type: str


class L3NetworkDnsInventory(Inventory):
    l3_network_uuid: str
    dns: str
    create_date: datetime
    last_op_date: datetime


class UsedIpInventory(Inventory):
    """One allocated address; what AllocateIpReply answers and VM NICs are built from."""

    uuid: str
    ip_range_uuid: str
    l3_network_uuid: str
    ip_version: int
    ip: str
    netmask: str
    gateway: str
    used_for: str | None = None
    ip_in_long: int
    vm_nic_uuid: str | None = None
    create_date: datetime
    last_op_date: datetime


class FreeIpInventory(Inventory):
    ip_range_uuid: str
    ip: str
    netmask: str
    gateway: str


# ----- rows -> inventories (the rows' nested lists must be loaded: see query.py) -------


def l2_inventory(row: L2NetworkVO) -> L2NetworkInventory:
    inventory = L2NetworkInventory.model_validate(row, from_attributes=True)
    inventory.attached_cluster_uuids = [ref.cluster_uuid for ref in row.cluster_refs]
    if row.type == L2_VLAN:
        inventory.vlan = row.virtual_network_id
    return inventory


def ip_range_inventory(row: IpRangeVO) -> IpRangeInventory:
    return IpRangeInventory.model_validate(row, from_attributes=True)


# What l3_inventory reads of a row besides its columns.
L3_LOAD_OPTIONS = (
    selectinload(L3NetworkVO.ip_ranges),
    selectinload(L3NetworkVO.dns_entries),
    selectinload(L3NetworkVO.service_refs),
)


def l3_inventory(row: L3NetworkVO) -> L3NetworkInventory:
    return L3NetworkInventory(
        uuid=row.uuid,
        name=row.name,
        description=row.description,
        type=row.type,
        zone_uuid=row.zone_uuid,
        l2_network_uuid=row.l2_network_uuid,
        state=row.state,
        dns_domain=row.dns_domain,
        system=row.system,
        category=row.category,
        ip_version=row.ip_version,
        enable_ipam=row.enable_ipam,
        isolated=row.isolated,
        create_date=row.create_date,
        last_op_date=row.last_op_date,
        dns=[entry.dns for entry in row.dns_entries],
        ip_ranges=[ip_range_inventory(r) for r in row.ip_ranges],
        network_services=[
            NetworkServiceL3NetworkRefInventory.model_validate(r, from_attributes=True)
            for r in row.service_refs
        ],
    )


def dns_inventory(row: L3NetworkDnsVO) -> L3NetworkDnsInventory:
    return L3NetworkDnsInventory.model_validate(row, from_attributes=True)


def ref_inventory(row: L2NetworkClusterRefVO) -> L2NetworkClusterRefInventory:
    return L2NetworkClusterRefInventory.model_validate(row, from_attributes=True)


def used_ip_inventory(row: UsedIpVO) -> UsedIpInventory:
    return UsedIpInventory.model_validate(row, from_attributes=True)
