"""The backupStorage plugin: the type-independent backup storage service (state, zones,
capacity, ping, image files), its configs and queries. Types come from other plugins
(sftpBackupStorage) through ``BackupStorageBackend``."""

from __future__ import annotations

from zstackpy.core.cascade import CascadeParticipant
from zstackpy.core.plugin import PluginRegistry
from zstackpy.services.backup_storage.configs import BACKUP_STORAGE_CONFIGS
from zstackpy.services.backup_storage.messages import BackupStorageErr
from zstackpy.services.backup_storage.queryables import (
    BACKUP_STORAGE,
    BACKUP_STORAGE_ZONE_REF,
    ZONE_BACKUP_STORAGE,
    ZONE_BACKUP_STORAGE_REF,
)
from zstackpy.services.backup_storage.service import BackupStorageService

# HTTP status of each code (unlisted: 503, as ZStack answers every failure).
ERROR_STATUSES = {
    BackupStorageErr.NOT_CONNECTED: 409,
    BackupStorageErr.DISABLED: 409,
    BackupStorageErr.NOT_ENOUGH_CAPACITY: 409,
    BackupStorageErr.ALREADY_ATTACHED: 409,
    BackupStorageErr.NOT_ATTACHED: 409,
}


class _Plugin:
    name = "backupStorage"

    def setup(self, registry: PluginRegistry) -> None:
        registry.add_service(BackupStorageService)
        registry.add_extension(CascadeParticipant, BackupStorageService)
        for config in BACKUP_STORAGE_CONFIGS:
            registry.add_global_config(config)
        registry.add_queryable(BACKUP_STORAGE)
        registry.add_queryable(BACKUP_STORAGE_ZONE_REF)
        registry.add_query_expansion(*ZONE_BACKUP_STORAGE_REF)
        registry.add_query_alias(*ZONE_BACKUP_STORAGE)
        for code, status in ERROR_STATUSES.items():
            registry.add_error_status(code, status)


plugin = _Plugin()
