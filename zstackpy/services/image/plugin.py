"""The image plugin: images on backup storage, their configs, flows and queries, and the
host allocator's image filter."""

from __future__ import annotations

from zstackpy.core.cascade import CascadeParticipant
from zstackpy.core.plugin import PluginRegistry
from zstackpy.services.host.extensions import HostAllocatorFilter
from zstackpy.services.image.configs import IMAGE_CONFIGS
from zstackpy.services.image.flows import IMAGE_FLOWS
from zstackpy.services.image.host_filter import ImageHostFilterService
from zstackpy.services.image.messages import ImageErr
from zstackpy.services.image.queryables import IMAGE, IMAGE_BACKUP_STORAGE_REF
from zstackpy.services.image.service import ImageService

# HTTP status of each code (unlisted: 503, as ZStack answers every failure: a download or
# an expunge failed on the storage's side).
ERROR_STATUSES = {
    ImageErr.NOT_DELETED: 409,
    ImageErr.NOT_ON_BACKUP_STORAGE: 400,
}


class _Plugin:
    name = "image"

    def setup(self, registry: PluginRegistry) -> None:
        registry.add_service(ImageService)
        registry.add_service(ImageHostFilterService)
        registry.add_extension(CascadeParticipant, ImageService)
        registry.add_extension(HostAllocatorFilter, ImageHostFilterService)
        for config in IMAGE_CONFIGS:
            registry.add_global_config(config)
        for flow_id, factory in IMAGE_FLOWS.items():
            registry.add_flow(flow_id, factory)
        registry.add_queryable(IMAGE)
        registry.add_queryable(IMAGE_BACKUP_STORAGE_REF)
        for code, status in ERROR_STATUSES.items():
            registry.add_error_status(code, status)


plugin = _Plugin()
