"""The flat network-service provider plugin (DHCP, DNS, userdata, EIPs on KVM hosts)."""

from __future__ import annotations

from zstackpy.core.plugin import PluginRegistry
from zstackpy.services.eip.extensions import EipBackend
from zstackpy.services.flat.provider import FlatProvider
from zstackpy.services.flat.userdata import USERDATA_TAG
from zstackpy.services.networkservice.extensions import NetworkServiceProviderBackend
from zstackpy.services.portforwarding.extensions import PortForwardingBackend


class _Plugin:
    name = "flatNetworkProvider"

    def setup(self, registry: PluginRegistry) -> None:
        registry.add_service(FlatProvider)
        registry.add_extension(NetworkServiceProviderBackend, FlatProvider)
        registry.add_extension(EipBackend, FlatProvider)
        registry.add_extension(PortForwardingBackend, FlatProvider)
        registry.add_system_tag_pattern(USERDATA_TAG)


plugin = _Plugin()
