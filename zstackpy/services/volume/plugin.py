"""The volume plugin: volumes and their snapshots, the image cache on primary storage,
the local storage and NFS volume backends, their flows, configs and queries, and the
primary storage detach check."""

from __future__ import annotations

from zstackpy.core.cascade import CascadeParticipant
from zstackpy.core.plugin import PluginRegistry
from zstackpy.services.primary_storage.extensions import PrimaryStorageDetachExtension
from zstackpy.services.volume.backends import LocalStorageVolumeBackend, NfsVolumeBackend
from zstackpy.services.volume.cache_cascade import ImageCacheCascade
from zstackpy.services.volume.candidates import AttachableVmService
from zstackpy.services.volume.configs import VOLUME_CONFIGS
from zstackpy.services.volume.detach_check import VolumeDetachCheck
from zstackpy.services.volume.extensions import VolumeStorageBackend
from zstackpy.services.volume.flows import VOLUME_FLOWS
from zstackpy.services.volume.messages import VolumeErr
from zstackpy.services.volume.queryables import FOREIGN_EXPANSIONS, VOLUME, VOLUME_SNAPSHOT
from zstackpy.services.volume.service import VolumeService
from zstackpy.services.volume.snapshots import VolumeSnapshotService

# HTTP status of each code (unlisted: 503, as ZStack answers every failure).
ERROR_STATUSES = {
    VolumeErr.WRONG_STATE: 409,
    VolumeErr.NO_IMAGE_SOURCE: 409,
    VolumeErr.INVALID_SIZE: 400,
    VolumeErr.UNSUPPORTED_STORAGE: 400,
    VolumeErr.NOT_ATTACHED: 409,
    VolumeErr.VM_NOT_STOPPED: 409,
    VolumeErr.NOT_DELETED: 409,
    VolumeErr.UNREACHABLE_STORAGE: 409,
    VolumeErr.DISK_OFFERING_DISABLED: 409,
}


class _Plugin:
    name = "volume"

    def setup(self, registry: PluginRegistry) -> None:
        registry.add_service(VolumeService)
        registry.add_service(ImageCacheCascade)
        registry.add_service(VolumeSnapshotService)
        registry.add_service(VolumeDetachCheck)
        registry.add_service(AttachableVmService)
        registry.add_extension(CascadeParticipant, VolumeService)
        registry.add_extension(CascadeParticipant, VolumeSnapshotService)
        registry.add_extension(CascadeParticipant, ImageCacheCascade)
        registry.add_extension(PrimaryStorageDetachExtension, VolumeDetachCheck)
        registry.add_extension(VolumeStorageBackend, LocalStorageVolumeBackend())
        registry.add_extension(VolumeStorageBackend, NfsVolumeBackend())
        for flow_id, factory in VOLUME_FLOWS.items():
            registry.add_flow(flow_id, factory)
        for config in VOLUME_CONFIGS:
            registry.add_global_config(config)
        registry.add_queryable(VOLUME)
        registry.add_queryable(VOLUME_SNAPSHOT)
        for resource, field_name, expansion in FOREIGN_EXPANSIONS:
            registry.add_query_expansion(resource, field_name, expansion)
        for code, status in ERROR_STATUSES.items():
            registry.add_error_status(code, status)


plugin = _Plugin()
