"""A seeded bug for the walker's own tests (``plugins=["tests.support.walker_bug:plugin"]``).

A VmBeforeStartExtension as a careless plugin might write one: it keeps a count of the
starts of each VM and refuses the third (the create's start counts), as if some
per-VM resource ran out. Nothing in product code changes; loading the plugin is the
switch. A walk must find it, and its shrunk log must replay it.
"""

from __future__ import annotations

from collections import Counter

from zstackpy.core.errors import ZError
from zstackpy.core.plugin import PluginRegistry
from zstackpy.services.vm.extensions import VmBeforeStartExtension, VmStartEvent

CODE = "TEST.1301"


class _RefuseTheThirdStart:
    def __init__(self) -> None:
        self.starts: Counter[str] = Counter()

    async def before_vm_start(self, event: VmStartEvent) -> None:
        self.starts[event.spec.vm_uuid] += 1
        if self.starts[event.spec.vm_uuid] == 3:
            raise ZError(CODE, "the seeded bug refuses a VM's third start")


class _Plugin:
    name = "walker-seeded-bug"

    def setup(self, registry: PluginRegistry) -> None:
        registry.add_extension(VmBeforeStartExtension, _RefuseTheThirdStart())


plugin = _Plugin()
