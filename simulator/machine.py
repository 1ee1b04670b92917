"""What one simulated machine is and holds: hardware, VMs, bridges, storage, faults.

The scale benchmark keeps 10,000 machines in one process, so a machine is a slotted object
whose containers exist only once something is put in them (``None`` until then), and
whose agent runtime is made at deployment. State changes are plain (non-async) methods:
the event loop runs each one whole, so capacity checks and updates never interleave.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from simulator.agent import SimulatedAgent
    from simulator.appliance import ApplianceState
    from simulator.kvm_network import NetworkState
    from simulator.world import World

KVM_PORT = 7070
SFTP_PORT = 7171
APPLIANCE_PORT = 7272  # a virtual-router appliance VM's agent
AGENT_PORTS = (KVM_PORT, SFTP_PORT, APPLIANCE_PORT)

GIB = 1024**3
TIB = 1024**4
DEFAULT_CPU_NUM = 32
DEFAULT_CPU_SPEED = 2600  # MHz
DEFAULT_CPU_SOCKETS = 2
DEFAULT_MEMORY = 128 * GIB
DEFAULT_LOCAL_STORAGE = 2 * TIB
DEFAULT_BACKUP_STORAGE = 2 * TIB
DEFAULT_INTERFACES = ("eth0", "eth1")
# ZStack's ``host cpu.overProvisioning.ratio`` default: the node allocates vCPUs against
# cpuNum x 10, so the simulator refuses only past that, not past the physical count.
DEFAULT_CPU_OVERPROVISIONING = 10.0

VM_RUNNING = "Running"
VM_PAUSED = "Paused"
VM_SHUTDOWN = "Shutdown"


@dataclass(slots=True, eq=False)
class Vm:
    """A VM defined on the machine (Running or Paused: a stopped VM is undefined, as with
    the real agent, so it is not kept)."""

    state: str
    cpu_num: int
    memory: int
    name: str = ""
    volumes: list[str] | None = None  # attached data volume uuids
    nics: list[str] | None = None  # plugged NIC uuids, device order

    def view(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "cpuNum": self.cpu_num,
            "memorySize": self.memory,
            "name": self.name,
            "dataVolumes": list(self.volumes or ()),
            "nics": list(self.nics or ()),
        }


@dataclass(slots=True, eq=False)
class Fault:
    """An injected misbehaviour of one command path: wait ``delay`` s, then answer
    ``fail`` (success false) if set, else run; ``drop_callback`` loses the async result.
    ``times`` counts how often it still fires (None: until cleared)."""

    fail: str | None = None
    delay: float = 0.0
    drop_callback: bool = False
    times: int | None = None

    def view(self) -> dict[str, Any]:
        return {
            "fail": self.fail,
            "delay": self.delay,
            "dropCallback": self.drop_callback,
            "times": self.times,
        }


@dataclass(slots=True, eq=False)
class Machine:
    """One simulated machine at (address, port); ``address`` is only a label."""

    address: str
    port: int
    world: World
    username: str = "root"
    password: str | None = None  # None: any password is accepted
    cpu_num: int = DEFAULT_CPU_NUM
    cpu_speed: int = DEFAULT_CPU_SPEED
    cpu_sockets: int = DEFAULT_CPU_SOCKETS
    memory_size: int = DEFAULT_MEMORY
    cpu_overprovisioning: float = DEFAULT_CPU_OVERPROVISIONING
    local_storage_capacity: int = DEFAULT_LOCAL_STORAGE
    storage_capacity: int = DEFAULT_BACKUP_STORAGE  # the SFTP backup storage (port 7171)
    physical_interfaces: tuple[str, ...] = DEFAULT_INTERFACES
    agent: SimulatedAgent | None = None  # made at the first deployment
    alive: bool = True
    host_uuid: str | None = None  # from /host/connect
    version: str | None = None  # from /host/connect, echoed by /host/ping
    # /host/ping answers the VM states when asked (our addition); off, the machine plays
    # an agent without it, which ignores the field.
    ping_vm_states: bool = True
    used_cpu: int = 0
    used_memory: int = 0
    local_used: int = 0
    storage_used: int = 0
    vms: dict[str, Vm] | None = None
    bridges: dict[str, dict[str, Any]] | None = None
    local_files: dict[str, int] | None = None  # install path -> bytes, local storage
    nfs_mounts: dict[str, str] | None = None  # primary storage uuid -> NFS url
    images: dict[str, int] | None = None  # install path -> bytes, backup storage
    commands: dict[str, int] | None = None  # path -> times run
    faults: dict[str, Fault] | None = field(default=None)
    network: NetworkState | None = None  # network services applied (simulator.kvm_network)
    appliance: ApplianceState | None = None  # an appliance's configuration (simulator.appliance)

    @property
    def deployed(self) -> bool:
        return self.agent is not None and self.agent.has_token

    @property
    def reachable(self) -> bool:
        return self.alive and self.deployed

    # ----- commands and faults ----------------------------------------------------------

    def count(self, path: str) -> None:
        if self.commands is None:
            self.commands = {}
        self.commands[path] = self.commands.get(path, 0) + 1

    def set_fault(self, path: str, fault: Fault) -> None:
        if self.faults is None:
            self.faults = {}
        self.faults[path] = fault

    def take_fault(self, path: str) -> Fault | None:
        """The fault for ``path`` if one fires now; spends one of its ``times``."""
        fault = self.faults.get(path) if self.faults else None
        if fault is None or self.faults is None:
            return None
        if fault.times is not None:
            fault.times -= 1
            if fault.times <= 0:
                del self.faults[path]
        return fault

    # ----- VMs --------------------------------------------------------------------------

    def free_cpu(self) -> int:
        return int(self.cpu_num * self.cpu_overprovisioning) - self.used_cpu

    def free_memory(self) -> int:
        return self.memory_size - self.used_memory

    def add_vm(self, uuid: str, vm: Vm) -> None:
        if self.vms is None:
            self.vms = {}
        self.vms[uuid] = vm
        self.used_cpu += vm.cpu_num
        self.used_memory += vm.memory

    def remove_vm(self, uuid: str) -> Vm | None:
        vm = self.vms.pop(uuid, None) if self.vms else None
        if vm is not None:
            self.used_cpu -= vm.cpu_num
            self.used_memory -= vm.memory
        return vm

    def vm(self, uuid: str) -> Vm | None:
        return self.vms.get(uuid) if self.vms else None

    # ----- the control API's view -------------------------------------------------------

    def view(self) -> dict[str, Any]:
        return {
            "address": self.address,
            "port": self.port,
            "deployed": self.deployed,
            "alive": self.alive,
            "hostUuid": self.host_uuid,
            "sendCommandUrl": self.agent.send_command_url if self.agent else None,
            "cpuNum": self.cpu_num,
            "cpuSpeed": self.cpu_speed,
            "memorySize": self.memory_size,
            "usedCpu": self.used_cpu,
            "usedMemory": self.used_memory,
            "vms": {uuid: vm.view() for uuid, vm in (self.vms or {}).items()},
            "bridges": dict(self.bridges or {}),
            "localStorage": {
                "capacity": self.local_storage_capacity,
                "used": self.local_used,
                "files": dict(self.local_files or {}),
            },
            "nfsMounts": dict(self.nfs_mounts or {}),
            "backupStorage": {
                "capacity": self.storage_capacity,
                "used": self.storage_used,
                "images": dict(self.images or {}),
            },
            "commands": dict(self.commands or {}),
            "faults": {path: f.view() for path, f in (self.faults or {}).items()},
            "network": self.network.view() if self.network else {},
            "appliance": self.appliance.view() if self.appliance else {},
        }


def vm_states(machine: Machine) -> dict[str, str]:
    """What the agent lists of its VMs (``/vm/vmsync``, and ``/host/ping`` when asked)."""
    return {vm_uuid: vm.state for vm_uuid, vm in (machine.vms or {}).items()}
