"""The security-group plugin: groups, rules and members over the API; the SecurityGroup
network-service provider applying them on KVM hosts; attachments go with L3 networks."""

from __future__ import annotations

from zstackpy.core.cascade import CascadeParticipant
from zstackpy.core.plugin import PluginRegistry
from zstackpy.services.networkservice.extensions import NetworkServiceProviderBackend
from zstackpy.services.securitygroup.errors import ERROR_STATUSES
from zstackpy.services.securitygroup.members import SecurityGroupMemberService
from zstackpy.services.securitygroup.provider import SecurityGroupHostService
from zstackpy.services.securitygroup.query import register_queries
from zstackpy.services.securitygroup.service import SecurityGroupService
from zstackpy.services.vm.extensions import VmNicDeletionExtension


class _Plugin:
    name = "securityGroup"

    def setup(self, registry: PluginRegistry) -> None:
        registry.add_service(SecurityGroupService)
        registry.add_service(SecurityGroupMemberService)
        registry.add_service(SecurityGroupHostService)
        registry.add_extension(NetworkServiceProviderBackend, SecurityGroupHostService)
        registry.add_extension(CascadeParticipant, SecurityGroupHostService)
        registry.add_extension(VmNicDeletionExtension, SecurityGroupMemberService)
        register_queries(registry)
        for code, status in ERROR_STATUSES.items():
            registry.add_error_status(code, status)


plugin = _Plugin()
