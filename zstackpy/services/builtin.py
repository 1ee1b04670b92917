"""The built-in plugin: the kernel's own services, registered like any third party's."""

from __future__ import annotations

from zstackpy.core.config.service import GlobalConfigService
from zstackpy.core.plugin import PluginRegistry
from zstackpy.services.apiportal.service import ApiPortalService
from zstackpy.services.managementnode.service import ManagementNodeService


class BuiltinPlugin:
    name = "builtin"

    def setup(self, registry: PluginRegistry) -> None:
        registry.add_service(ApiPortalService)
        registry.add_service(ManagementNodeService)
        registry.add_service(GlobalConfigService)


plugin = BuiltinPlugin()
