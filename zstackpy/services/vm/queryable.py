"""What the query API serves of the VM domain (``VmInstance`` with its NICs and volumes
nested, ``VmNic``), with ZStack's join edges, and the edges other resources get towards
VMs and NICs (expanded_queries.json)."""

from __future__ import annotations

from zstackpy.api.query import Expansion, QueryableResource
from zstackpy.core.plugin import PluginRegistry
from zstackpy.services.vm.messages import VmInstanceInventory, VmNicInventory
from zstackpy.services.vm.models import VmInstanceVO, VmNicVO
from zstackpy.services.vm.records import (
    NIC_LOAD_OPTIONS,
    VM_LOAD_OPTIONS,
    nic_inventory,
    vm_inventory,
)

VM_INSTANCE = QueryableResource(
    name="VmInstance",
    model=VmInstanceVO,
    inventory=VmInstanceInventory,
    expansions={
        "zone": Expansion("Zone", "zoneUuid", "uuid"),
        "cluster": Expansion("Cluster", "clusterUuid", "uuid"),
        "host": Expansion("Host", "hostUuid", "uuid"),
        "image": Expansion("Image", "imageUuid", "uuid"),
        "instanceOffering": Expansion("InstanceOffering", "instanceOfferingUuid", "uuid"),
        "vmNics": Expansion("VmNic", "uuid", "vmInstanceUuid"),
        "rootVolume": Expansion("Volume", "rootVolumeUuid", "uuid"),
        "allVolumes": Expansion("Volume", "uuid", "vmInstanceUuid"),
    },
    to_inventory=vm_inventory,
    load_options=VM_LOAD_OPTIONS,
)
VM_NIC = QueryableResource(
    name="VmNic",
    model=VmNicVO,
    inventory=VmNicInventory,
    expansions={
        "vmInstance": Expansion("VmInstance", "vmInstanceUuid", "uuid"),
        "l3Network": Expansion("L3Network", "l3NetworkUuid", "uuid"),
        "usedIp": Expansion("UsedIp", "uuid", "vmNicUuid"),
    },
    to_inventory=nic_inventory,
    load_options=NIC_LOAD_OPTIONS,
)

# (resource, edge, expansion) other plugins' resources get towards ours.
FOREIGN_EDGES = (
    ("Zone", "vmInstance", Expansion("VmInstance", "uuid", "zoneUuid")),
    ("Cluster", "vmInstance", Expansion("VmInstance", "uuid", "clusterUuid")),
    ("Host", "vmInstance", Expansion("VmInstance", "uuid", "hostUuid")),
    ("InstanceOffering", "vmInstance", Expansion("VmInstance", "uuid", "instanceOfferingUuid")),
    ("L3Network", "vmNic", Expansion("VmNic", "uuid", "l3NetworkUuid")),
    ("UsedIp", "vmNic", Expansion("VmNic", "vmNicUuid", "uuid")),
    ("Volume", "vmInstance", Expansion("VmInstance", "vmInstanceUuid", "uuid")),
)


def register_queries(registry: PluginRegistry) -> None:
    registry.add_queryable(VM_INSTANCE)
    registry.add_queryable(VM_NIC)
    for resource, edge, expansion in FOREIGN_EDGES:
        registry.add_query_expansion(resource, edge, expansion)
