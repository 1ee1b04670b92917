"""The host plugin: the host service (state, status, capacity, ping tracking, deletes),
the host allocator, their global configs, and the ``host`` join edges of zones and
clusters. The ``Host``
queryable itself and AddKVMHost come from the kvm plugin (the hypervisor's inventory)."""

from __future__ import annotations

from zstackpy.api.query import Expansion
from zstackpy.core.cascade import CascadeParticipant
from zstackpy.core.membership import NodeTakeover
from zstackpy.core.plugin import PluginRegistry
from zstackpy.services.host.allocator.flows import ALLOCATOR_FLOWS
from zstackpy.services.host.allocator.service import HostAllocatorService
from zstackpy.services.host.allocator.strategies import BUILTIN_STRATEGIES
from zstackpy.services.host.configs import HOST_CONFIGS
from zstackpy.services.host.extensions import HostAllocatorStrategy
from zstackpy.services.host.messages import HOST_RESOURCE_TYPE, HostErr
from zstackpy.services.host.service import HostService
from zstackpy.services.tag.patterns import TagPattern

# HTTP statuses of the errors a client can act on; the rest answer 503 like ZStack.
ERROR_STATUSES = {
    HostErr.DUPLICATE_MANAGEMENT_IP: 409,
    HostErr.WRONG_STATE: 409,
    HostErr.NOT_KVM_CLUSTER: 400,
    HostErr.BAD_STATE_EVENT: 409,
    HostErr.REPORT_REFUSED: 401,
    HostErr.UNKNOWN_STRATEGY: 400,
}

# A system tag the allocator's filter-by-host-tags matches (AllocateHostMsg.host_tags):
# AddKVMHost systemTags=["hostTag::gpu"], then host_tags=["hostTag::gpu"].
HOST_TAG = TagPattern(HOST_RESOURCE_TYPE, "hostTag::{name}", description="a label for placement")


class _Plugin:
    name = "host"

    def setup(self, registry: PluginRegistry) -> None:
        registry.add_service(HostService)
        registry.add_extension(CascadeParticipant, HostService)
        registry.add_extension(NodeTakeover, HostService)
        for definition in HOST_CONFIGS:
            registry.add_global_config(definition)
        registry.add_query_expansion("Zone", "host", Expansion("Host", "uuid", "zoneUuid"))
        registry.add_query_expansion("Cluster", "host", Expansion("Host", "uuid", "clusterUuid"))
        registry.add_system_tag_pattern(HOST_TAG)
        for code, status in ERROR_STATUSES.items():
            registry.add_error_status(code, status)
        registry.add_service(HostAllocatorService)
        for flow_id, flow in ALLOCATOR_FLOWS.items():
            registry.add_flow(flow_id, flow)
        for strategy in BUILTIN_STRATEGIES:
            registry.add_extension(HostAllocatorStrategy, strategy)


plugin = _Plugin()
