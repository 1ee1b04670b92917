"""What the query API serves of the network domain, with ZStack's join edges
(``expanded_queries.json``) and its queryable nested lists.

ZStack also lets a query name a nested list of an inventory as if it were a column
(``QueryL3Network dns=8.8.8.8``, ``QueryL2Network attachedClusterUuids=<uuid>``: its
``@Queryable`` fields). The generic engine compares columns, so such a field is given a
column whose comparisons become an existential test on the list's table: ``dns=8.8.8.8``
means "some DNS row of this L3 has dns = 8.8.8.8", the same semantics as an expanded field.
List fields of whole inventories (``ipRanges.startIp=...``) are ordinary join edges.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import ColumnElement, String, exists, type_coerce
from sqlalchemy.orm import selectinload

from zstackpy.api.query import Expansion, QueryableResource
from zstackpy.core.plugin import PluginRegistry
from zstackpy.services.network.inventories import (
    L3_LOAD_OPTIONS,
    IpRangeInventory,
    L2NetworkClusterRefInventory,
    L2NetworkInventory,
    L3NetworkInventory,
    UsedIpInventory,
    l2_inventory,
    l3_inventory,
)
from zstackpy.services.network.models import (
    IpRangeVO,
    L2NetworkClusterRefVO,
    L2NetworkVO,
    L2VlanNetworkVO,
    L3NetworkDnsVO,
    L3NetworkVO,
    UsedIpVO,
)


class _ListField(String):
    """A text "column" standing for a list: ``owner_key`` of the queried row equals
    ``list_key`` of the list's rows, and every comparison applies to ``list_value``."""

    cache_ok = True

    def __init__(self, owner_key: Any, list_key: Any, list_value: Any) -> None:
        super().__init__()
        self.owner_key = owner_key
        self.list_key = list_key
        self.list_value = list_value

    class comparator_factory(String.Comparator[str]):  # noqa: N801 - SQLAlchemy's hook name
        def operate(self, op: Callable[..., Any], *other: Any, **kwargs: Any) -> Any:
            field: _ListField = self.type  # type: ignore[assignment]  # set by _list_field
            return exists().where(
                field.list_key == field.owner_key, op(field.list_value, *other, **kwargs)
            )


def _list_field(owner_key: Any, list_key: Any, list_value: Any) -> ColumnElement[str]:
    return type_coerce(owner_key, _ListField(owner_key, list_key, list_value))


_L2_COLUMNS: dict[str, ColumnElement[Any]] = {
    "attachedClusterUuids": _list_field(
        L2NetworkVO.uuid, L2NetworkClusterRefVO.l2_network_uuid, L2NetworkClusterRefVO.cluster_uuid
    ),
    # A NoVlan network has none (0); queries of ``vlan`` see the stored id as ZStack does.
    "vlan": L2NetworkVO.virtual_network_id.expression,
}
_L2_EXPANSIONS = {
    "zone": Expansion("Zone", "zoneUuid", "uuid"),
    "l3Network": Expansion("L3Network", "uuid", "l2NetworkUuid"),
    "clusterRef": Expansion("L2NetworkClusterRef", "uuid", "l2NetworkUuid", hidden=True),
}
_L2_LOAD = (selectinload(L2NetworkVO.cluster_refs),)

L2_NETWORK = QueryableResource(
    name="L2Network",
    model=L2NetworkVO,
    inventory=L2NetworkInventory,
    expansions=dict(_L2_EXPANSIONS),
    aliases={"cluster": "clusterRef.cluster"},
    columns=_L2_COLUMNS,
    to_inventory=l2_inventory,
    load_options=_L2_LOAD,
)
L2_VLAN_NETWORK = QueryableResource(
    name="L2VlanNetwork",
    model=L2VlanNetworkVO,
    inventory=L2NetworkInventory,
    expansions=dict(_L2_EXPANSIONS),
    aliases={"cluster": "clusterRef.cluster"},
    columns=_L2_COLUMNS,
    to_inventory=l2_inventory,
    load_options=(selectinload(L2VlanNetworkVO.cluster_refs),),
)
L2_NETWORK_CLUSTER_REF = QueryableResource(
    name="L2NetworkClusterRef",
    model=L2NetworkClusterRefVO,
    inventory=L2NetworkClusterRefInventory,
    expansions={
        "cluster": Expansion("Cluster", "clusterUuid", "uuid"),
        "l2Network": Expansion("L2Network", "l2NetworkUuid", "uuid"),
    },
)
L3_NETWORK = QueryableResource(
    name="L3Network",
    model=L3NetworkVO,
    inventory=L3NetworkInventory,
    expansions={
        "zone": Expansion("Zone", "zoneUuid", "uuid"),
        "l2Network": Expansion("L2Network", "l2NetworkUuid", "uuid"),
        "usedIp": Expansion("UsedIp", "uuid", "l3NetworkUuid"),
        "ipRanges": Expansion("IpRange", "uuid", "l3NetworkUuid"),
    },
    columns={
        "dns": _list_field(L3NetworkVO.uuid, L3NetworkDnsVO.l3_network_uuid, L3NetworkDnsVO.dns)
    },
    to_inventory=l3_inventory,
    load_options=L3_LOAD_OPTIONS,
)
IP_RANGE = QueryableResource(
    name="IpRange",
    model=IpRangeVO,
    inventory=IpRangeInventory,
    expansions={"l3Network": Expansion("L3Network", "l3NetworkUuid", "uuid")},
)
USED_IP = QueryableResource(
    name="UsedIp",
    model=UsedIpVO,
    inventory=UsedIpInventory,
    expansions={"l3Network": Expansion("L3Network", "l3NetworkUuid", "uuid")},
)

QUERYABLES = (L2_NETWORK, L2_VLAN_NETWORK, L2_NETWORK_CLUSTER_REF, L3_NETWORK, IP_RANGE, USED_IP)


def register_queries(registry: PluginRegistry) -> None:
    """Our resources, and the edges other resources get towards them."""
    for resource in QUERYABLES:
        registry.add_queryable(resource)
    registry.add_query_expansion("Zone", "l2Network", Expansion("L2Network", "uuid", "zoneUuid"))
    registry.add_query_expansion("Zone", "l3Network", Expansion("L3Network", "uuid", "zoneUuid"))
    # ZStack's Cluster.l2Network / l2VlanNetwork: aliases over hidden ref edges.
    for ref, alias in (("l2NetworkRef", "l2Network"), ("l2VlanNetworkRef", "l2VlanNetwork")):
        registry.add_query_expansion(
            "Cluster", ref, Expansion("L2NetworkClusterRef", "uuid", "clusterUuid", hidden=True)
        )
        registry.add_query_alias("Cluster", alias, f"{ref}.l2Network")
