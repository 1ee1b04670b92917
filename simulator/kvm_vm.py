"""KVM agent (port 7070): VM lifecycle, devices and snapshots.

As with the real agent, a stopped VM is undefined: only Running and Paused VMs are kept,
they alone use CPU and memory, and ``/vm/checkstate`` calls an unknown VM "Shutdown".
Stop and destroy of an unknown VM succeed (the node may retry them).
"""

from __future__ import annotations

import uuid
from typing import Any

from agents.runtime import AgentCommandError
from simulator.commands import SimCommand, field_int, field_str, gib
from simulator.machine import KVM_PORT, VM_PAUSED, VM_RUNNING, VM_SHUTDOWN, Machine, Vm, vm_states


def _vm(machine: Machine, vm_uuid: str) -> Vm:
    vm = machine.vm(vm_uuid)
    if vm is None:
        raise AgentCommandError(f"vm {vm_uuid} is not on {machine.address}")
    return vm


def _check_room(machine: Machine, cpu_num: int, memory: int) -> None:
    if cpu_num > machine.free_cpu():
        raise AgentCommandError(
            f"not enough free CPU on {machine.address}: {cpu_num} vCPUs wanted, "
            f"{machine.free_cpu()} free"
        )
    if memory > machine.free_memory():
        raise AgentCommandError(
            f"not enough free memory on {machine.address}: {gib(memory)} wanted, "
            f"{gib(machine.free_memory())} free"
        )


def start(machine: Machine, cmd: dict[str, Any]) -> dict[str, Any]:
    vm_uuid = field_str(cmd, "vmInstanceUuid")
    if machine.vm(vm_uuid) is not None:
        return {}  # already defined: starting it again is a no-op, as on libvirt
    cpu_num = field_int(cmd, "cpuNum")
    memory = field_int(cmd, "memory")
    _check_room(machine, cpu_num, memory)
    name = cmd.get("vmName")
    vm = Vm(VM_RUNNING, cpu_num, memory, name if isinstance(name, str) else "")
    # Data volumes given at start are attached from the first boot, as libvirt defines them.
    data_volumes = cmd.get("dataVolumes") or []
    if not isinstance(data_volumes, list) or not all(isinstance(v, dict) for v in data_volumes):
        raise AgentCommandError("dataVolumes must be a list of volume objects")
    if data_volumes:
        vm.volumes = [field_str(v, "volumeUuid") for v in data_volumes]
    nics = cmd.get("nics") or []
    if not isinstance(nics, list) or not all(isinstance(n, dict) for n in nics):
        raise AgentCommandError("nics must be a list of NIC objects")
    vm.nics = [field_str(n, "uuid") for n in nics]
    machine.add_vm(vm_uuid, vm)
    return {}


def stop(machine: Machine, cmd: dict[str, Any]) -> dict[str, Any]:
    vm_uuid = field_str(cmd, "uuid")
    machine.remove_vm(vm_uuid)
    machine.world.vm_gone(vm_uuid)
    return {}


def destroy(machine: Machine, cmd: dict[str, Any]) -> dict[str, Any]:
    vm_uuid = field_str(cmd, "uuid")
    machine.remove_vm(vm_uuid)
    machine.world.vm_gone(vm_uuid)
    return {}


def reboot(machine: Machine, cmd: dict[str, Any]) -> dict[str, Any]:
    _vm(machine, field_str(cmd, "uuid")).state = VM_RUNNING
    return {}


def pause(machine: Machine, cmd: dict[str, Any]) -> dict[str, Any]:
    _vm(machine, field_str(cmd, "uuid")).state = VM_PAUSED
    return {}


def resume(machine: Machine, cmd: dict[str, Any]) -> dict[str, Any]:
    _vm(machine, field_str(cmd, "uuid")).state = VM_RUNNING
    return {}


def vmsync(machine: Machine, cmd: dict[str, Any]) -> dict[str, Any]:
    return {"states": vm_states(machine), "vmInShutdowns": []}


def check_state(machine: Machine, cmd: dict[str, Any]) -> dict[str, Any]:
    uuids = cmd.get("vmUuids") or []
    if not isinstance(uuids, list):
        raise AgentCommandError("vmUuids must be a list")
    states = {}
    for vm_uuid in uuids:
        vm = machine.vm(vm_uuid) if isinstance(vm_uuid, str) else None
        states[vm_uuid] = vm.state if vm is not None else VM_SHUTDOWN
    return {"states": states}


def migrate(machine: Machine, cmd: dict[str, Any]) -> dict[str, Any]:
    vm_uuid = field_str(cmd, "vmUuid")
    dest_address = cmd.get("destHostManagementIp") or cmd.get("destHostIp")
    if not isinstance(dest_address, str) or not dest_address:
        raise AgentCommandError("the command needs destHostManagementIp")
    vm = _vm(machine, vm_uuid)
    dest = machine.world.find(dest_address, KVM_PORT)
    if dest is None or not dest.reachable:
        raise AgentCommandError(f"cannot migrate vm {vm_uuid}: {dest_address} is unreachable")
    if dest is machine:
        raise AgentCommandError(f"vm {vm_uuid} is already on {dest_address}")
    try:
        _check_room(dest, vm.cpu_num, vm.memory)
    except AgentCommandError as exc:
        raise AgentCommandError(f"cannot migrate vm {vm_uuid}: {exc.error}") from None
    machine.remove_vm(vm_uuid)
    dest.add_vm(vm_uuid, vm)
    return {}


def _volume_uuid(cmd: dict[str, Any]) -> str:
    volume = cmd.get("volume")
    if not isinstance(volume, dict):
        raise AgentCommandError("the command needs a volume object")
    return field_str(volume, "volumeUuid")


def attach_data_volume(machine: Machine, cmd: dict[str, Any]) -> dict[str, Any]:
    vm = _vm(machine, field_str(cmd, "vmInstanceUuid"))
    volume_uuid = _volume_uuid(cmd)
    if vm.volumes is None:
        vm.volumes = []
    if volume_uuid not in vm.volumes:
        vm.volumes.append(volume_uuid)
    return {}


def detach_data_volume(machine: Machine, cmd: dict[str, Any]) -> dict[str, Any]:
    vm = _vm(machine, field_str(cmd, "vmInstanceUuid"))
    volume_uuid = _volume_uuid(cmd)
    if vm.volumes and volume_uuid in vm.volumes:
        vm.volumes.remove(volume_uuid)
    return {}


def detach_nic(machine: Machine, cmd: dict[str, Any]) -> dict[str, Any]:
    vm = _vm(machine, field_str(cmd, "vmUuid"))
    nic = cmd.get("nic")
    if not isinstance(nic, dict):
        raise AgentCommandError("the command needs a nic object")
    nic_uuid = field_str(nic, "uuid")
    if vm.nics and nic_uuid in vm.nics:
        vm.nics.remove(nic_uuid)  # already gone: a retried detach succeeds
    return {}


def take_snapshot(machine: Machine, cmd: dict[str, Any]) -> dict[str, Any]:
    # Like a qcow2 external snapshot: the current file becomes the snapshot and a new,
    # empty top file takes writes from now on.
    current = cmd.get("volumeInstallPath") or cmd.get("installPath")
    if not isinstance(current, str) or not current:
        raise AgentCommandError("the command needs volumeInstallPath")
    new_top = cmd.get("newVolumeInstallPath")
    if not isinstance(new_top, str) or not new_top:
        directory = current.rpartition("/")[0]
        new_top = f"{directory}/{uuid.uuid4().hex}.qcow2"
    # The new top file is made where the volume's file lives (the host's disk, or the NFS
    # share it mounted), as the hypervisor makes it: a later snapshot of it, a revert to
    # that snapshot or a merge must find it there.
    files = _files_holding(machine, current)
    size = files.get(current, 0) if files is not None else 0
    if files is not None:
        files.setdefault(new_top, 0)
    return {"newVolumeInstallPath": new_top, "snapshotInstallPath": current, "size": size}


def _files_holding(machine: Machine, path: str) -> dict[str, int] | None:
    """The file table (local disk or a mounted NFS share's) that holds ``path``."""
    if machine.local_files is not None and path in machine.local_files:
        return machine.local_files
    for url in (machine.nfs_mounts or {}).values():
        share = machine.world.nfs_share(url)
        if share.files is not None and path in share.files:
            return share.files
    return None


COMMANDS: dict[str, SimCommand] = {
    "/vm/start": SimCommand(start),
    "/vm/stop": SimCommand(stop),
    "/vm/reboot": SimCommand(reboot),
    "/vm/destroy": SimCommand(destroy),
    "/vm/pause": SimCommand(pause),
    "/vm/resume": SimCommand(resume),
    "/vm/vmsync": SimCommand(vmsync),
    "/vm/checkstate": SimCommand(check_state),
    "/vm/migrate": SimCommand(migrate),
    "/vm/attachdatavolume": SimCommand(attach_data_volume),
    "/vm/detachnic": SimCommand(detach_nic),
    "/vm/detachdatavolume": SimCommand(detach_data_volume),
    "/vm/volume/takesnapshot": SimCommand(take_snapshot),
}
