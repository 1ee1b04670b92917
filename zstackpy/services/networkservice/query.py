"""What the query API serves of network services: providers (with their types) and the
per-L3 choices, with ZStack's join edges."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field
from sqlalchemy.orm import selectinload

from zstackpy.api.messages import Inventory
from zstackpy.api.query import Expansion, QueryableResource
from zstackpy.core.plugin import PluginRegistry
from zstackpy.services.network.inventories import NetworkServiceL3NetworkRefInventory
from zstackpy.services.network.models import NetworkServiceL3NetworkRefVO
from zstackpy.services.networkservice.models import NetworkServiceProviderVO


class NetworkServiceProviderInventory(Inventory):
    uuid: str
    name: str
    description: str | None = None
    type: str
    create_date: datetime
    last_op_date: datetime
    network_service_types: list[str] = Field(default_factory=list)
    # Providers are not attached to L2 networks here: every provider serves every L2.
    attached_l2_network_uuids: list[str] = Field(default_factory=list)


def provider_inventory(row: Any) -> NetworkServiceProviderInventory:
    return NetworkServiceProviderInventory(
        uuid=row.uuid,
        name=row.name,
        description=row.description,
        type=row.type,
        create_date=row.create_date,
        last_op_date=row.last_op_date,
        network_service_types=[t.type for t in row.service_types],
    )


PROVIDER = QueryableResource(
    name="NetworkServiceProvider",
    model=NetworkServiceProviderVO,
    inventory=NetworkServiceProviderInventory,
    to_inventory=provider_inventory,
    load_options=(selectinload(NetworkServiceProviderVO.service_types),),
)
L3_REF = QueryableResource(
    name="NetworkServiceL3NetworkRef",
    model=NetworkServiceL3NetworkRefVO,
    inventory=NetworkServiceL3NetworkRefInventory,
    expansions={
        "l3Network": Expansion("L3Network", "l3NetworkUuid", "uuid"),
        "serviceProvider": Expansion(
            "NetworkServiceProvider", "networkServiceProviderUuid", "uuid"
        ),
    },
)


def register_queries(registry: PluginRegistry) -> None:
    registry.add_queryable(PROVIDER)
    registry.add_queryable(L3_REF)
    # ZStack's queryable nested list: networkServices.networkServiceType=Eip
    registry.add_query_expansion(
        "L3Network",
        "networkServices",
        Expansion("NetworkServiceL3NetworkRef", "uuid", "l3NetworkUuid"),
    )
    registry.add_query_expansion(
        "L3Network",
        "serviceProviderRef",
        Expansion("NetworkServiceL3NetworkRef", "uuid", "l3NetworkUuid", hidden=True),
    )
