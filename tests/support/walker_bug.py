"""A seeded bug for the walker's own tests (``plugins=["tests.support.walker_bug:plugin"]``).

A VmBeforeStartExtension as a careless plugin might write one: it counts the starts of
each VM and refuses the second (the create's start counts), so a VM that was stopped
never starts again, as if a per-VM resource were never given back. Nothing in product
code changes; loading the plugin is the switch. A walk must find it, and its shrunk log
must replay it.
"""

from __future__ import annotations

from collections import Counter

from zstackpy.core.errors import ZError
from zstackpy.core.plugin import PluginRegistry
from zstackpy.services.vm.extensions import VmBeforeStartExtension, VmStartEvent

CODE = "TEST.1301"


class _RefuseTheSecondStart:
    def __init__(self) -> None:
        self.starts: Counter[str] = Counter()

    async def before_vm_start(self, event: VmStartEvent) -> None:
        self.starts[event.spec.vm_uuid] += 1
        if self.starts[event.spec.vm_uuid] == 2:
            raise ZError(CODE, "the seeded bug refuses a VM's second start")


class _Plugin:
    name = "walker-seeded-bug"

    def setup(self, registry: PluginRegistry) -> None:
        registry.add_extension(VmBeforeStartExtension, _RefuseTheSecondStart())


plugin = _Plugin()
