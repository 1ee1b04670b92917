"""The localStorage plugin: the LocalStorage type of primary storage."""

from __future__ import annotations

from zstackpy.core.plugin import PluginRegistry
from zstackpy.services.local_storage.backend import LocalStorageBackend
from zstackpy.services.primary_storage.extensions import PrimaryStorageBackend


class _Plugin:
    name = "localStorage"

    def setup(self, registry: PluginRegistry) -> None:
        registry.add_extension(PrimaryStorageBackend, LocalStorageBackend())


plugin = _Plugin()
