"""The nfsPrimaryStorage plugin: the NFS type of primary storage."""

from __future__ import annotations

from zstackpy.core.plugin import PluginRegistry
from zstackpy.services.nfs_primary_storage.backend import NfsPrimaryStorageBackend
from zstackpy.services.primary_storage.extensions import PrimaryStorageBackend


class _Plugin:
    name = "nfsPrimaryStorage"

    def setup(self, registry: PluginRegistry) -> None:
        registry.add_extension(PrimaryStorageBackend, NfsPrimaryStorageBackend())


plugin = _Plugin()
