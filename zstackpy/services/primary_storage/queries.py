"""What the query API knows of primary storage: the resources and ZStack's join edges
(``expanded_queries.json``). Edges to volumes and snapshots come with those resources."""

from __future__ import annotations

from sqlalchemy import Select, func, select
from sqlalchemy.orm import selectinload

from zstackpy.api.messages import AuthContext
from zstackpy.api.query import Expansion, QueryableResource
from zstackpy.core.db import ResourceVO
from zstackpy.core.errors import SysErr, ZError
from zstackpy.services.primary_storage.messages import (
    APIGetPrimaryStorageCapacityMsg,
    PrimaryStorageClusterRefInventory,
    PrimaryStorageInventory,
)
from zstackpy.services.primary_storage.models import PrimaryStorageClusterRefVO, PrimaryStorageVO

# Loads attachedClusterUuids with the rows: one extra statement per query, none per row.
LOAD_CLUSTER_REFS = selectinload(PrimaryStorageVO.cluster_refs)


def queryables() -> list[QueryableResource]:
    """Fresh resources per node: the query registry adds other plugins' edges to them."""
    return [
        QueryableResource(
            name="PrimaryStorage",
            model=PrimaryStorageVO,
            inventory=PrimaryStorageInventory,
            expansions={
                "zone": Expansion("Zone", "zoneUuid", "uuid"),
                "clusterRef": Expansion(
                    "PrimaryStorageClusterRef", "uuid", "primaryStorageUuid", hidden=True
                ),
            },
            aliases={"cluster": "clusterRef.cluster"},
            load_options=(LOAD_CLUSTER_REFS,),
        ),
        QueryableResource(
            name="PrimaryStorageClusterRef",
            model=PrimaryStorageClusterRefVO,
            inventory=PrimaryStorageClusterRefInventory,
            expansions={
                "cluster": Expansion("Cluster", "clusterUuid", "uuid"),
                "primaryStorage": Expansion("PrimaryStorage", "primaryStorageUuid", "uuid"),
            },
        ),
    ]


# Edges on other services' resources (ZStack's Zone.primaryStorage, Cluster.primaryStorageRef).
FOREIGN_EXPANSIONS: tuple[tuple[str, str, Expansion], ...] = (
    ("Zone", "primaryStorage", Expansion("PrimaryStorage", "uuid", "zoneUuid")),
    (
        "Cluster",
        "primaryStorageRef",
        Expansion("PrimaryStorageClusterRef", "uuid", "clusterUuid", hidden=True),
    ),
)
# ZStack's @ExpandedQueryAlias over the hidden edge: Cluster.primaryStorage.
FOREIGN_ALIASES: tuple[tuple[str, str, str], ...] = (
    ("Cluster", "primaryStorage", "primaryStorageRef.primaryStorage"),
)


def capacity_sum(
    msg: APIGetPrimaryStorageCapacityMsg, auth: AuthContext
) -> Select[int, int, int, int]:
    """GetPrimaryStorageCapacity's statement: one row (total, available, total physical,
    available physical) summed over the storage in the zones, attached to the clusters or
    named (any of them), or every storage with ``all``; a normal account sums only its own.
    ZError SYS.1007 when nothing selects any storage."""
    ps = PrimaryStorageVO
    stmt = select(
        func.coalesce(func.sum(ps.total_capacity), 0),
        func.coalesce(func.sum(ps.available_capacity), 0),
        func.coalesce(func.sum(ps.total_physical_capacity), 0),
        func.coalesce(func.sum(ps.available_physical_capacity), 0),
    )
    if not msg.all:
        if not (msg.zone_uuids or msg.cluster_uuids or msg.primary_storage_uuids):
            raise ZError(
                SysErr.INVALID_ARGUMENT,
                "name zoneUuids, clusterUuids or primaryStorageUuids, or set all=true",
            )
        attached = select(PrimaryStorageClusterRefVO.primary_storage_uuid).where(
            PrimaryStorageClusterRefVO.cluster_uuid.in_(msg.cluster_uuids)
        )
        stmt = stmt.where(
            ps.zone_uuid.in_(msg.zone_uuids)
            | ps.uuid.in_(msg.primary_storage_uuids)
            | ps.uuid.in_(attached)
        )
    if not auth.is_admin:
        owned = select(ResourceVO.uuid).where(ResourceVO.account_uuid == auth.account_uuid)
        stmt = stmt.where(ps.uuid.in_(owned))
    return stmt
