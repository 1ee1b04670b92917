"""Images as the query API sees them: backupStorageRefs nested in each inventory (and
queryable: ``backupStorageRefs.installPath=...``), ZStack's edge to backup storage through
the ref table, and the ref resource it walks through."""

from __future__ import annotations

from sqlalchemy.orm import selectinload

from zstackpy.api.query import Expansion, QueryableResource
from zstackpy.services.image.messages import ImageBackupStorageRefInventory, ImageInventory
from zstackpy.services.image.models import ImageBackupStorageRefVO, ImageVO

IMAGE = QueryableResource(
    name="Image",
    model=ImageVO,
    inventory=ImageInventory,
    expansions={
        "backupStorageRef": Expansion("ImageBackupStorageRef", "uuid", "imageUuid", hidden=True),
        # ZStack's @Queryable nested list: conditions on the refs' own fields.
        "backupStorageRefs": Expansion("ImageBackupStorageRef", "uuid", "imageUuid"),
    },
    aliases={"backupStorage": "backupStorageRef.backupStorage"},
    load_options=(selectinload(ImageVO.backup_storage_refs),),
)

IMAGE_BACKUP_STORAGE_REF = QueryableResource(
    name="ImageBackupStorageRef",
    model=ImageBackupStorageRefVO,
    inventory=ImageBackupStorageRefInventory,
    expansions={
        "image": Expansion("Image", "imageUuid", "uuid"),
        "backupStorage": Expansion("BackupStorage", "backupStorageUuid", "uuid"),
    },
)
