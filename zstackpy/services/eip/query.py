"""What the query API serves of EIPs, with ZStack's join edges, among them the one seed
001's example needs: ``zones?q=vmInstance.vmNics.eip.vipIp=16.16.16.16``."""

from __future__ import annotations

from zstackpy.api.query import Expansion, QueryableResource
from zstackpy.core.plugin import PluginRegistry
from zstackpy.services.eip.messages import EipInventory
from zstackpy.services.eip.models import EipVO

EIP = QueryableResource(
    name="Eip",
    model=EipVO,
    inventory=EipInventory,
    expansions={
        "vip": Expansion("Vip", "vipUuid", "uuid"),
        "vmNic": Expansion("VmNic", "vmNicUuid", "uuid"),
    },
)


def register_queries(registry: PluginRegistry) -> None:
    registry.add_queryable(EIP)
    registry.add_query_expansion("VmNic", "eip", Expansion("Eip", "uuid", "vmNicUuid"))
    registry.add_query_expansion("Vip", "eip", Expansion("Eip", "uuid", "vipUuid"))
