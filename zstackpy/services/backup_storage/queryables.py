"""Backup storage as the query API sees it: ZStack's join edges (zone, image through their
ref tables) and the hidden zone ref resource they walk through."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import selectinload

from zstackpy.api.query import Expansion, QueryableResource
from zstackpy.services.backup_storage.messages import (
    BackupStorageInventory,
    BackupStorageZoneRefInventory,
)
from zstackpy.services.backup_storage.models import BackupStorageVO, BackupStorageZoneRefVO


def backup_storage_edges() -> dict[str, Any]:
    """The expansions and aliases of BackupStorage, shared by its type subresources
    (SftpBackupStorage). ``imageRef`` targets ImageBackupStorageRef, which the image
    plugin registers."""
    return {
        "expansions": {
            "zoneRef": Expansion("BackupStorageZoneRef", "uuid", "backupStorageUuid", hidden=True),
            "imageRef": Expansion(
                "ImageBackupStorageRef", "uuid", "backupStorageUuid", hidden=True
            ),
        },
        "aliases": {"zone": "zoneRef.zone", "image": "imageRef.image"},
    }


BACKUP_STORAGE = QueryableResource(
    name="BackupStorage",
    model=BackupStorageVO,
    inventory=BackupStorageInventory,
    load_options=(selectinload(BackupStorageVO.zone_refs),),
    **backup_storage_edges(),
)

BACKUP_STORAGE_ZONE_REF = QueryableResource(
    name="BackupStorageZoneRef",
    model=BackupStorageZoneRefVO,
    inventory=BackupStorageZoneRefInventory,
    expansions={
        "backupStorage": Expansion("BackupStorage", "backupStorageUuid", "uuid"),
        "zone": Expansion("Zone", "zoneUuid", "uuid"),
    },
)

# Zone's edge to its backup storage refs (ZStack's hidden Zone.backupStorageRef) and the
# alias that walks through them (Zone.backupStorage).
ZONE_BACKUP_STORAGE_REF = (
    "Zone",
    "backupStorageRef",
    Expansion("BackupStorageZoneRef", "uuid", "zoneUuid", hidden=True),
)
ZONE_BACKUP_STORAGE = ("Zone", "backupStorage", "backupStorageRef.backupStorage")
