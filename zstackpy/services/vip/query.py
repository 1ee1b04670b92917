"""What the query API serves of VIPs, with ZStack's join edges."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import selectinload

from zstackpy.api.query import Expansion, QueryableResource
from zstackpy.core.plugin import PluginRegistry
from zstackpy.services.vip.messages import VipInventory
from zstackpy.services.vip.models import VipVO


def vip_inventory(row: Any) -> VipInventory:
    return VipInventory.model_validate(row, from_attributes=True)


VIP = QueryableResource(
    name="Vip",
    model=VipVO,
    inventory=VipInventory,
    to_inventory=vip_inventory,
    load_options=(selectinload(VipVO.services_refs),),
    expansions={
        "l3Network": Expansion("L3Network", "l3NetworkUuid", "uuid"),
        "usedIp": Expansion("UsedIp", "usedIpUuid", "uuid"),
    },
)


def register_queries(registry: PluginRegistry) -> None:
    registry.add_queryable(VIP)
