"""The offering plugin: instance and disk offerings, their services and queries."""

from __future__ import annotations

from zstackpy.api.query import QueryableResource
from zstackpy.core.plugin import PluginRegistry
from zstackpy.services.offering.messages import DiskOfferingInventory, InstanceOfferingInventory
from zstackpy.services.offering.models import DiskOfferingVO, InstanceOfferingVO
from zstackpy.services.offering.service import DiskOfferingService, InstanceOfferingService

# ZStack's edges InstanceOffering.vmInstance and DiskOffering.volume join resources of
# other plugins: the VM and volume plugins add them with registry.add_query_expansion.
INSTANCE_OFFERING = QueryableResource(
    name="InstanceOffering", model=InstanceOfferingVO, inventory=InstanceOfferingInventory
)
DISK_OFFERING = QueryableResource(
    name="DiskOffering", model=DiskOfferingVO, inventory=DiskOfferingInventory
)


class _Plugin:
    name = "offering"

    def setup(self, registry: PluginRegistry) -> None:
        registry.add_service(InstanceOfferingService)
        registry.add_service(DiskOfferingService)
        registry.add_queryable(INSTANCE_OFFERING)
        registry.add_queryable(DISK_OFFERING)


plugin = _Plugin()
