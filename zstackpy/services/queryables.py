"""The resources the query API serves out of the box, with ZStack's join edges between them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from zstackpy.api.query import Expansion, QueryableResource
from zstackpy.core.db import GlobalConfigVO, ManagementNodeVO
from zstackpy.services.cluster.messages import ClusterInventory
from zstackpy.services.cluster.models import ClusterVO
from zstackpy.services.configapi.messages import GlobalConfigApiInventory
from zstackpy.services.managementnode.messages import ManagementNodeInventory
from zstackpy.services.tag.messages import SystemTagInventory, TagInventory
from zstackpy.services.tag.models import SystemTagVO, UserTagVO
from zstackpy.services.zone.messages import ZoneInventory
from zstackpy.services.zone.models import ZoneVO


def _management_node(row: Any) -> ManagementNodeInventory:
    # Heartbeats are database-clock epoch seconds; the API shows dates like ZStack.
    return ManagementNodeInventory(
        uuid=row.uuid,
        host_name=row.host_name,
        join_date=datetime.fromtimestamp(row.joined_at, UTC).replace(tzinfo=None),
        heart_beat=datetime.fromtimestamp(row.heartbeat, UTC).replace(tzinfo=None),
    )


def _global_config(row: Any) -> GlobalConfigApiInventory:
    return GlobalConfigApiInventory(
        category=row.category,
        name=row.name,
        value=row.value,
        default_value=row.default_value,
        description=row.description,
    )


ZONE = QueryableResource(
    name="Zone",
    model=ZoneVO,
    inventory=ZoneInventory,
    expansions={"cluster": Expansion("Cluster", "uuid", "zoneUuid")},
)
CLUSTER = QueryableResource(
    name="Cluster",
    model=ClusterVO,
    inventory=ClusterInventory,
    expansions={"zone": Expansion("Zone", "zoneUuid", "uuid")},
)
MANAGEMENT_NODE = QueryableResource(
    name="ManagementNode",
    model=ManagementNodeVO,
    inventory=ManagementNodeInventory,
    to_inventory=_management_node,
)
GLOBAL_CONFIG = QueryableResource(
    name="GlobalConfig",
    model=GlobalConfigVO,
    inventory=GlobalConfigApiInventory,
    to_inventory=_global_config,
)

SYSTEM_TAG = QueryableResource(name="SystemTag", model=SystemTagVO, inventory=SystemTagInventory)
USER_TAG = QueryableResource(name="UserTag", model=UserTagVO, inventory=TagInventory)

BUILTIN_QUERYABLES = (ZONE, CLUSTER, MANAGEMENT_NODE, GLOBAL_CONFIG, SYSTEM_TAG, USER_TAG)
