"""A plugin whose takeover hook takes its time when a node leaves, as hooks that read and
write the database do under load (``ZSTACK_PLUGINS`` or ``NodeSettings.plugins``)."""

from __future__ import annotations

import asyncio

from zstackpy.core.membership import NodeTakeover, RingChange
from zstackpy.core.plugin import PluginRegistry

HOOK_S = 3.0


class SlowTakeover:
    def __init__(self) -> None:
        self.handled: list[str] = []  # the departed nodes whose takeover ended

    async def take_over(self, change: RingChange) -> None:
        if change.left:
            await asyncio.sleep(HOOK_S)
            self.handled.extend(sorted(change.left))


class SlowTakeoverPlugin:
    name = "slowTakeover"

    def setup(self, registry: PluginRegistry) -> None:
        registry.add_extension(NodeTakeover, SlowTakeover())


plugin = SlowTakeoverPlugin()
