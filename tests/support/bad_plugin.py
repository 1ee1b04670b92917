"""A plugin whose takeover hook is not ``async``: the node must refuse to start."""

from __future__ import annotations

from zstackpy.core.membership import NodeTakeover, RingChange
from zstackpy.core.plugin import PluginRegistry


class SyncTakeover:
    def take_over(self, change: RingChange) -> None:
        del change


class BadPlugin:
    name = "bad"

    def setup(self, registry: PluginRegistry) -> None:
        registry.add_extension(NodeTakeover, SyncTakeover())


plugin = BadPlugin()
