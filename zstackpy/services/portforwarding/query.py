"""What the query API serves of port-forwarding rules, with ZStack's join edges."""

from __future__ import annotations

from zstackpy.api.query import Expansion, QueryableResource
from zstackpy.core.plugin import PluginRegistry
from zstackpy.services.portforwarding.messages import PortForwardingRuleInventory
from zstackpy.services.portforwarding.models import PortForwardingRuleVO

PORT_FORWARDING_RULE = QueryableResource(
    name="PortForwardingRule",
    model=PortForwardingRuleVO,
    inventory=PortForwardingRuleInventory,
    expansions={
        "vip": Expansion("Vip", "vipUuid", "uuid"),
        "vmNic": Expansion("VmNic", "vmNicUuid", "uuid"),
    },
)


def register_queries(registry: PluginRegistry) -> None:
    registry.add_queryable(PORT_FORWARDING_RULE)
    registry.add_query_expansion(
        "VmNic", "portForwarding", Expansion("PortForwardingRule", "uuid", "vmNicUuid")
    )
    registry.add_query_expansion(
        "Vip", "portForwarding", Expansion("PortForwardingRule", "uuid", "vipUuid")
    )
