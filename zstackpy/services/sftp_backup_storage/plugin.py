"""The sftpBackupStorage plugin: the SFTP type of backup storage (agent on port 7171)."""

from __future__ import annotations

from sqlalchemy.orm import selectinload

from zstackpy.api.query import QueryableResource
from zstackpy.core.plugin import PluginRegistry
from zstackpy.services.backup_storage.extensions import BackupStorageBackend
from zstackpy.services.backup_storage.queryables import backup_storage_edges
from zstackpy.services.sftp_backup_storage.flows import SFTP_FLOWS
from zstackpy.services.sftp_backup_storage.messages import (
    SftpBackupStorageErr,
    SftpBackupStorageInventory,
)
from zstackpy.services.sftp_backup_storage.models import SftpBackupStorageVO
from zstackpy.services.sftp_backup_storage.service import SftpBackupStorageService

SFTP_BACKUP_STORAGE = QueryableResource(
    name="SftpBackupStorage",
    model=SftpBackupStorageVO,
    inventory=SftpBackupStorageInventory,
    load_options=(selectinload(SftpBackupStorageVO.zone_refs),),
    **backup_storage_edges(),
)


class _Plugin:
    name = "sftpBackupStorage"

    def setup(self, registry: PluginRegistry) -> None:
        registry.add_service(SftpBackupStorageService)
        registry.add_extension(BackupStorageBackend, SftpBackupStorageService)
        for flow_id, factory in SFTP_FLOWS.items():
            registry.add_flow(flow_id, factory)
        registry.add_queryable(SFTP_BACKUP_STORAGE)
        registry.add_error_status(SftpBackupStorageErr.DUPLICATE_HOSTNAME, 409)


plugin = _Plugin()
