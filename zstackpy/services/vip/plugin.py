"""The VIP plugin: VIPs over the API, acquired and released by the services using them,
deleted with their L3 network."""

from __future__ import annotations

from zstackpy.core.cascade import CascadeParticipant
from zstackpy.core.plugin import PluginRegistry
from zstackpy.services.vip.messages import VipErr
from zstackpy.services.vip.query import register_queries
from zstackpy.services.vip.service import VipService


class _Plugin:
    name = "vip"

    def setup(self, registry: PluginRegistry) -> None:
        registry.add_service(VipService)
        registry.add_extension(CascadeParticipant, VipService)
        register_queries(registry)
        registry.add_error_status(VipErr.IN_USE, 409)
        registry.add_error_status(VipErr.NOT_ENABLED, 409)


plugin = _Plugin()
