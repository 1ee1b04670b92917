"""Volumes and snapshots as the query API sees them, with ZStack's join edges
(expanded_queries.json), and the edges other resources get towards them."""

from __future__ import annotations

from zstackpy.api.query import Expansion, QueryableResource
from zstackpy.services.volume.messages import VolumeInventory
from zstackpy.services.volume.models import VolumeSnapshotVO, VolumeVO
from zstackpy.services.volume.snapshot_messages import VolumeSnapshotInventory

VOLUME = QueryableResource(
    name="Volume",
    model=VolumeVO,
    inventory=VolumeInventory,
    expansions={
        "primaryStorage": Expansion("PrimaryStorage", "primaryStorageUuid", "uuid"),
        "diskOffering": Expansion("DiskOffering", "diskOfferingUuid", "uuid"),
        "image": Expansion("Image", "rootImageUuid", "uuid"),
        "snapshot": Expansion("VolumeSnapshot", "uuid", "volumeUuid"),
    },
)

VOLUME_SNAPSHOT = QueryableResource(
    name="VolumeSnapshot",
    model=VolumeSnapshotVO,
    inventory=VolumeSnapshotInventory,
    expansions={
        "volume": Expansion("Volume", "volumeUuid", "uuid"),
        "primaryStorage": Expansion("PrimaryStorage", "primaryStorageUuid", "uuid"),
    },
)

# Edges of other plugins' resources towards volumes and snapshots: (resource, field, edge).
FOREIGN_EXPANSIONS = (
    ("PrimaryStorage", "volume", Expansion("Volume", "uuid", "primaryStorageUuid")),
    ("PrimaryStorage", "volumeSnapshot", Expansion("VolumeSnapshot", "uuid", "primaryStorageUuid")),
    ("DiskOffering", "volume", Expansion("Volume", "uuid", "diskOfferingUuid")),
    ("Image", "volume", Expansion("Volume", "uuid", "rootImageUuid")),
)
