"""The built-in plugin: the kernel's own services, registered like any third party's."""

from __future__ import annotations

from zstackpy.api.jobs import ApiJobService
from zstackpy.core.cascade import CascadeParticipant
from zstackpy.core.config.service import GlobalConfigService
from zstackpy.core.membership import NodeTakeover
from zstackpy.core.plugin import PluginRegistry
from zstackpy.services.apiportal.service import ApiPortalService
from zstackpy.services.cluster.service import ClusterService
from zstackpy.services.configapi.service import GlobalConfigApiService
from zstackpy.services.identity.plugin import register_identity
from zstackpy.services.managementnode.service import ManagementNodeService
from zstackpy.services.query.service import QueryService
from zstackpy.services.queryables import BUILTIN_QUERYABLES
from zstackpy.services.tag.models import SystemTagVO, UserTagVO
from zstackpy.services.tag.queries import tag_pseudo_field
from zstackpy.services.tag.service import TagService
from zstackpy.services.zone.service import ZoneService


class BuiltinPlugin:
    name = "builtin"

    def setup(self, registry: PluginRegistry) -> None:
        registry.add_service(ApiPortalService)
        registry.add_service(ManagementNodeService)
        registry.add_service(GlobalConfigService)
        register_identity(registry)
        registry.add_service(ApiJobService)
        registry.add_extension(NodeTakeover, ApiJobService)
        registry.add_service(GlobalConfigApiService)
        registry.add_service(QueryService)
        registry.add_service(ZoneService)
        registry.add_service(ClusterService)
        registry.add_service(TagService)
        registry.add_extension(CascadeParticipant, ClusterService)
        registry.add_extension(CascadeParticipant, TagService)
        registry.add_query_pseudo_field("__systemTag__", tag_pseudo_field(SystemTagVO))
        registry.add_query_pseudo_field("__userTag__", tag_pseudo_field(UserTagVO))
        for resource in BUILTIN_QUERYABLES:
            registry.add_queryable(resource)


plugin = BuiltinPlugin()
