"""Inventories of the security-group domain and what the query API serves of it, with
ZStack's join edges (``expanded_queries.json``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field
from sqlalchemy.orm import selectinload

from zstackpy.api.messages import Inventory
from zstackpy.api.query import Expansion, QueryableResource
from zstackpy.core.plugin import PluginRegistry
from zstackpy.services.securitygroup.models import (
    SecurityGroupL3NetworkRefVO,
    SecurityGroupRuleVO,
    SecurityGroupVO,
    VmNicSecurityGroupRefVO,
)


class SecurityGroupRuleInventory(Inventory):
    uuid: str
    security_group_uuid: str
    type: str
    ip_version: int
    protocol: str
    state: str
    priority: int
    description: str | None = None
    action: str
    allowed_cidr: str | None = None
    remote_security_group_uuid: str | None = None
    start_port: int
    end_port: int
    dst_port_range: str | None = None
    create_date: datetime
    last_op_date: datetime


class SecurityGroupInventory(Inventory):
    uuid: str
    name: str
    description: str | None = None
    state: str
    ip_version: int
    create_date: datetime
    last_op_date: datetime
    rules: list[SecurityGroupRuleInventory] = Field(default_factory=list)
    attached_l3_network_uuids: list[str] = Field(default_factory=list)


class SecurityGroupL3NetworkRefInventory(Inventory):
    uuid: str
    security_group_uuid: str
    l3_network_uuid: str
    create_date: datetime
    last_op_date: datetime


class VmNicSecurityGroupRefInventory(Inventory):
    uuid: str
    vm_nic_uuid: str
    security_group_uuid: str
    vm_instance_uuid: str
    priority: int
    create_date: datetime
    last_op_date: datetime


def rule_inventory(row: Any) -> SecurityGroupRuleInventory:
    inventory = SecurityGroupRuleInventory.model_validate(row, from_attributes=True)
    if row.start_port >= 0:
        inventory.dst_port_range = (
            str(row.start_port)
            if row.start_port == row.end_port
            else f"{row.start_port}-{row.end_port}"
        )
    return inventory


def group_inventory(row: Any) -> SecurityGroupInventory:
    return SecurityGroupInventory(
        uuid=row.uuid,
        name=row.name,
        description=row.description,
        state=row.state,
        ip_version=row.ip_version,
        create_date=row.create_date,
        last_op_date=row.last_op_date,
        rules=[rule_inventory(r) for r in row.rules],
        attached_l3_network_uuids=[r.l3_network_uuid for r in row.l3_refs],
    )


GROUP_LOAD_OPTIONS = (selectinload(SecurityGroupVO.rules), selectinload(SecurityGroupVO.l3_refs))

SECURITY_GROUP = QueryableResource(
    name="SecurityGroup",
    model=SecurityGroupVO,
    inventory=SecurityGroupInventory,
    expansions={
        "l3NetworkRef": Expansion(
            "SecurityGroupL3NetworkRef", "uuid", "securityGroupUuid", hidden=True
        ),
        "vmNicRef": Expansion("VmNicSecurityGroupRef", "uuid", "securityGroupUuid", hidden=True),
        # ZStack's queryable nested list: rules.protocol=TCP
        "rules": Expansion("SecurityGroupRule", "uuid", "securityGroupUuid"),
    },
    aliases={"l3Network": "l3NetworkRef.l3Network", "vmNic": "vmNicRef.vmNic"},
    to_inventory=group_inventory,
    load_options=GROUP_LOAD_OPTIONS,
)
SECURITY_GROUP_RULE = QueryableResource(
    name="SecurityGroupRule",
    model=SecurityGroupRuleVO,
    inventory=SecurityGroupRuleInventory,
    expansions={"securityGroup": Expansion("SecurityGroup", "securityGroupUuid", "uuid")},
    to_inventory=rule_inventory,
)
L3_REF = QueryableResource(
    name="SecurityGroupL3NetworkRef",
    model=SecurityGroupL3NetworkRefVO,
    inventory=SecurityGroupL3NetworkRefInventory,
    expansions={
        "securityGroup": Expansion("SecurityGroup", "securityGroupUuid", "uuid"),
        "l3Network": Expansion("L3Network", "l3NetworkUuid", "uuid"),
    },
)
NIC_REF = QueryableResource(
    name="VmNicSecurityGroupRef",
    model=VmNicSecurityGroupRefVO,
    inventory=VmNicSecurityGroupRefInventory,
    expansions={
        "securityGroup": Expansion("SecurityGroup", "securityGroupUuid", "uuid"),
        "vmNic": Expansion("VmNic", "vmNicUuid", "uuid"),
    },
)


def register_queries(registry: PluginRegistry) -> None:
    for resource in (SECURITY_GROUP, SECURITY_GROUP_RULE, L3_REF, NIC_REF):
        registry.add_queryable(resource)
    registry.add_query_expansion(
        "VmNic",
        "securityGroupRef",
        Expansion("VmNicSecurityGroupRef", "uuid", "vmNicUuid", hidden=True),
    )
    registry.add_query_alias("VmNic", "securityGroup", "securityGroupRef.securityGroup")
