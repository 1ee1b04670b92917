"""The KVM hypervisor's VM operations (``VmHypervisorBackend``): each builds the KVM
agent's command (reference §4.3, ``KVMAgentCommands``) and runs it on the VM's host with
HostAgentCallMsg, so it waits in the host's command queue like every other agent call and
fails with HOST.1002 when the host is not Connected."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from zstackpy.core.service import Service
from zstackpy.services.host.messages import HostAgentCallMsg, HostAgentCallReply
from zstackpy.services.kvm.configs import VM_SYNC_ON_HOST_PING
from zstackpy.services.kvm.models import KVM_HYPERVISOR
from zstackpy.services.vm.extensions import (
    VmHost,
    VmMigrateRequest,
    VmNicRequest,
    VmNicSpec,
    VmOnHost,
    VmStartSpec,
    VmStatesOnHost,
    VmStopRequest,
    VmVolumeRequest,
)
from zstackpy.services.volume.messages import VolumeView

# The agent's VM states in ZStack's terms (KVMConstant.KvmVmState); others are Unknown.
AGENT_VM_STATES = {
    "Running": "Running",
    "Shutdown": "Stopped",
    "Paused": "Paused",
    "Crashed": "Crashed",
    "NoState": "NoState",
}
# The bus waits a little longer than the agent call it carries, so the agent's own timeout
# (an AGENT.1002 with the path) is what a caller sees.
_BUS_MARGIN_S = 30.0
_SYNC_TIMEOUT_S = 60.0


def volume_to(volume: VolumeView) -> dict[str, Any]:
    """ZStack's VolumeTO."""
    return {
        "volumeUuid": volume.uuid,
        "installPath": volume.install_path,
        "deviceId": volume.device_id if volume.device_id is not None else 0,
        "deviceType": "file",
        "format": volume.format,
        "useVirtio": True,
        "cacheMode": "none",
    }


def nic_to(nic: VmNicSpec) -> dict[str, Any]:
    """ZStack's NicTO."""
    return {
        "uuid": nic.uuid,
        "mac": nic.mac,
        "bridgeName": nic.bridge_name,
        "nicInternalName": nic.internal_name,
        "deviceId": nic.device_id,
        "l3NetworkUuid": nic.l3_network_uuid,
        "ips": [nic.ip] if nic.ip else [],
        "ip": nic.ip,
        "netmask": nic.netmask,
        "gateway": nic.gateway,
        "defaultRoute": nic.is_default,
        "useVirtio": nic.driver_type == "virtio",
        "driverType": nic.driver_type,
        "mtu": 1500,
    }


# Our addition to ``/host/ping`` (docs/api.md, agents): asked with this field, the agent
# answers the host's VM states as ``/vm/vmsync`` would, so a ping and its VM sync are one
# call instead of two.
PING_ASKS_VM_STATES = "withVmStates"
PING_VM_STATES = "vmStates"


def _vm_states(states: object) -> VmStatesOnHost:
    if not isinstance(states, dict):
        states = {}
    return VmStatesOnHost(
        states={
            str(vm_uuid): AGENT_VM_STATES.get(str(state), "Unknown")
            for vm_uuid, state in states.items()
        }
    )


class KvmVmBackend(Service):
    """Registered by the kvm plugin as the VmHypervisorBackend of KVM hosts. A service only
    to get the node's context: it handles no messages."""

    name = "kvmVmBackend"

    def hypervisor_type(self) -> str:
        return KVM_HYPERVISOR

    def syncs_on_ping(self) -> bool:
        return self.ctx.configs.value(VM_SYNC_ON_HOST_PING)

    async def start_vm(self, spec: VmStartSpec) -> None:
        await self._call(
            spec.host,
            "/vm/start",
            {
                "vmInstanceUuid": spec.vm_uuid,
                "vmName": spec.name,
                "vmInternalId": spec.internal_id,
                "memory": spec.memory_size,
                "cpuNum": spec.cpu_num,
                "cpuSpeed": spec.cpu_speed,
                "socketNum": 1,
                "cpuOnSocket": spec.cpu_num,
                "bootDev": list(spec.boot_devices),
                "rootVolume": volume_to(spec.root_volume),
                "dataVolumes": [volume_to(v) for v in spec.data_volumes],
                "cdRoms": [],
                "nics": [nic_to(n) for n in spec.nics],
                "hostname": spec.hostname,
                "vmPlatform": spec.platform,
                "vmArchitecture": spec.architecture,
                "timeout": int(spec.timeout),
                "addons": {},
            },
            spec.timeout,
        )

    async def stop_vm(self, request: VmStopRequest) -> None:
        await self._call(
            request.host,
            "/vm/stop",
            {
                "uuid": request.vm_uuid,
                "type": request.type,
                "timeout": int(request.timeout),
                "vmNics": [nic_to(n) for n in request.nics],
            },
            request.timeout,
        )

    async def reboot_vm(self, request: VmOnHost) -> None:
        await self._call(
            request.host,
            "/vm/reboot",
            {"uuid": request.vm_uuid, "timeout": int(request.timeout), "bootDev": ["hd"]},
            request.timeout,
        )

    async def pause_vm(self, request: VmOnHost) -> None:
        await self._call(
            request.host,
            "/vm/pause",
            {"uuid": request.vm_uuid, "timeout": int(request.timeout)},
            request.timeout,
        )

    async def resume_vm(self, request: VmOnHost) -> None:
        await self._call(
            request.host,
            "/vm/resume",
            {"uuid": request.vm_uuid, "timeout": int(request.timeout)},
            request.timeout,
        )

    async def destroy_vm(self, request: VmOnHost) -> None:
        await self._call(
            request.host,
            "/vm/destroy",
            {"uuid": request.vm_uuid, "vmNics": [nic_to(n) for n in request.nics]},
            request.timeout,
        )

    async def migrate_vm(self, request: VmMigrateRequest) -> None:
        await self._call(
            request.source,
            "/vm/migrate",
            {
                "vmUuid": request.vm_uuid,
                "srcHostIp": request.source.management_ip,
                "destHostIp": request.target.management_ip,
                "destHostManagementIp": request.target.management_ip,
                "storageMigrationPolicy": None,
                "migrateFromDestination": False,
                "autoConverge": request.auto_converge,
                "xbzrle": False,
                "downTime": request.down_time,
                "nics": [nic_to(n) for n in request.nics],
                "disks": [volume_to(v) for v in request.volumes],
                "timeout": int(request.timeout),
            },
            request.timeout,
        )

    async def attach_volume(self, request: VmVolumeRequest) -> None:
        await self._call(
            request.host,
            "/vm/attachdatavolume",
            {"vmInstanceUuid": request.vm_uuid, "volume": volume_to(request.volume)},
            request.timeout,
        )

    async def detach_volume(self, request: VmVolumeRequest) -> None:
        await self._call(
            request.host,
            "/vm/detachdatavolume",
            {"vmInstanceUuid": request.vm_uuid, "volume": volume_to(request.volume)},
            request.timeout,
        )

    async def detach_nic(self, request: VmNicRequest) -> None:
        await self._call(
            request.host,
            "/vm/detachnic",
            {"vmUuid": request.vm_uuid, "nic": nic_to(request.nic)},
            request.timeout,
        )

    async def list_vm_states(self, host: VmHost) -> VmStatesOnHost:
        result = await self._call(host, "/vm/vmsync", {}, _SYNC_TIMEOUT_S)
        return _vm_states(result.get("states"))

    def ping_fields(self) -> Mapping[str, Any]:
        return {PING_ASKS_VM_STATES: True}

    def states_in_ping(self, answer: Mapping[str, Any]) -> VmStatesOnHost | None:
        if PING_VM_STATES not in answer:
            return None  # an agent without the addition (ZStack's answers hostUuid only)
        return _vm_states(answer[PING_VM_STATES])

    async def _call(
        self, host: VmHost, path: str, command: dict[str, Any], timeout_s: float
    ) -> dict[str, Any]:
        reply = await self.ctx.bus.request(
            HostAgentCallMsg(host_uuid=host.uuid, path=path, command=command, timeout=timeout_s),
            HostAgentCallReply,
            timeout=timeout_s + _BUS_MARGIN_S,
        )
        return reply.result
