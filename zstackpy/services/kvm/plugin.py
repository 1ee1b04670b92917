"""The kvm plugin: AddKVMHost and the KVM hypervisor backend, the connect flows, the
``Host`` queryable, the ``kvm`` global configs, and the KVM backend of VMs."""

from __future__ import annotations

from zstackpy.core.agent.driver import AgentDriverProvider
from zstackpy.core.plugin import PluginRegistry
from zstackpy.services.host.extensions import HypervisorBackend
from zstackpy.services.kvm.configs import KVM_CONFIGS
from zstackpy.services.kvm.deployer import AnsibleDriverProvider
from zstackpy.services.kvm.flows import KVM_CONNECT_FLOWS
from zstackpy.services.kvm.queryable import HOST_QUERYABLE
from zstackpy.services.kvm.service import KvmService
from zstackpy.services.kvm.vm_backend import KvmVmBackend
from zstackpy.services.vm.extensions import VmHypervisorBackend


class _Plugin:
    name = "kvm"

    def setup(self, registry: PluginRegistry) -> None:
        registry.add_service(KvmService)
        registry.add_extension(HypervisorBackend, KvmService)
        # Real KVM hosts: reached at their IP, deployed with Ansible (deployer.py).
        registry.add_extension(AgentDriverProvider, AnsibleDriverProvider())
        for flow_id, flow in KVM_CONNECT_FLOWS.items():
            registry.add_flow(flow_id, flow)
        for definition in KVM_CONFIGS:
            registry.add_global_config(definition)
        registry.add_queryable(HOST_QUERYABLE)
        # The VM service's hypervisor backend for KVM hosts (vm_backend.py).
        registry.add_service(KvmVmBackend)
        registry.add_extension(VmHypervisorBackend, KvmVmBackend)


plugin = _Plugin()
