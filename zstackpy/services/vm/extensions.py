"""Extension points of the VM domain.

- ``VmHypervisorBackend``: how one hypervisor type runs VMs (the KVM plugin registers the
  KVM one, over its agent). The VM service picks the backend whose ``hypervisor_type()``
  is the VM's host's, and calls it inside the VM's work queue.
- ``VmBeforeStartExtension``: called in the VM's queue just before a VM starts on a
  host (create, start); raise ZError to refuse the start.

Every hook takes one input model, so fields can be added without breaking plugins.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from zstackpy.services.volume.messages import VolumeView


@dataclass(frozen=True, slots=True)
class VmHost:
    """The host a VM command goes to."""

    uuid: str
    management_ip: str
    hypervisor_type: str


@dataclass(frozen=True, slots=True)
class VmNicSpec:
    """A NIC as the hypervisor plugs it: into ``bridge_name`` on the host."""

    uuid: str
    l3_network_uuid: str
    mac: str
    ip: str | None
    netmask: str | None
    gateway: str | None
    device_id: int
    internal_name: str
    bridge_name: str
    is_default: bool
    driver_type: str = "virtio"


@dataclass(frozen=True, slots=True)
class VmStartSpec:
    """Everything a hypervisor needs to define and boot a VM on ``host``: sizes, the root
    volume and data volumes (device order), the NICs (device order)."""

    vm_uuid: str
    name: str
    internal_id: int
    host: VmHost
    cpu_num: int
    cpu_speed: int
    memory_size: int  # bytes
    platform: str | None
    architecture: str | None
    root_volume: VolumeView
    data_volumes: tuple[VolumeView, ...]
    nics: tuple[VmNicSpec, ...]
    hostname: str | None = None
    boot_devices: tuple[str, ...] = ("hd",)
    timeout: float = 300.0


@dataclass(frozen=True, slots=True)
class VmOnHost:
    """A command about one VM on its host: reboot, pause, resume, destroy."""

    vm_uuid: str
    host: VmHost
    nics: tuple[VmNicSpec, ...] = ()
    timeout: float = 300.0


@dataclass(frozen=True, slots=True)
class VmStopRequest:
    """Stop a VM: ``grace`` asks the guest to shut down (the agent falls back to a cold
    stop after ``timeout``), ``cold`` and ``force`` destroy the domain at once."""

    vm_uuid: str
    host: VmHost
    type: Literal["grace", "cold", "force"] = "grace"
    nics: tuple[VmNicSpec, ...] = ()
    timeout: float = 300.0


@dataclass(frozen=True, slots=True)
class VmMigrateRequest:
    """Live-migrate a Running VM from ``source`` to ``target`` (storage stays where it is:
    shared storage only)."""

    vm_uuid: str
    source: VmHost
    target: VmHost
    volumes: tuple[VolumeView, ...] = ()
    nics: tuple[VmNicSpec, ...] = ()
    auto_converge: bool = False
    down_time: int | None = None
    timeout: float = 900.0


@dataclass(frozen=True, slots=True)
class VmVolumeRequest:
    """Attach or detach a data volume of a Running or Paused VM, live."""

    vm_uuid: str
    host: VmHost
    volume: VolumeView
    timeout: float = 300.0


@dataclass(frozen=True, slots=True)
class VmNicRequest:
    """Unplug a NIC from a Running or Paused VM, live."""

    vm_uuid: str
    host: VmHost
    nic: VmNicSpec
    timeout: float = 300.0


@dataclass(frozen=True, slots=True)
class VmStatesOnHost:
    """What a host runs, by VM uuid, in ZStack's states (Running, Stopped, Paused, Unknown,
    ...): the answer to ``list_vm_states``, for state sync."""

    states: dict[str, str] = field(default_factory=dict)


class VmHypervisorBackend(Protocol):
    """One hypervisor's VM operations. Each call runs on the host named in its input (a
    Connected one) and raises ZError with the cause when the hypervisor refuses or does
    not answer (AGENT.*, HOST.1002); the VM service then leaves the VM as it was.
    Stopping or destroying a VM the host does not have succeeds (callers retry)."""

    def hypervisor_type(self) -> str:
        """The ``hypervisor_type`` of the hosts this backend drives, e.g. "KVM"."""
        ...

    async def start_vm(self, spec: VmStartSpec) -> None: ...

    async def stop_vm(self, request: VmStopRequest) -> None: ...

    async def reboot_vm(self, request: VmOnHost) -> None: ...

    async def pause_vm(self, request: VmOnHost) -> None: ...

    async def resume_vm(self, request: VmOnHost) -> None: ...

    async def destroy_vm(self, request: VmOnHost) -> None: ...

    async def migrate_vm(self, request: VmMigrateRequest) -> None: ...

    async def attach_volume(self, request: VmVolumeRequest) -> None: ...

    async def detach_volume(self, request: VmVolumeRequest) -> None: ...

    async def detach_nic(self, request: VmNicRequest) -> None: ...

    async def list_vm_states(self, host: VmHost) -> VmStatesOnHost:
        """Every VM the host runs (``/vm/vmsync`` on KVM). A VM the host does not list is
        not defined there (Stopped)."""
        ...

    def syncs_on_ping(self) -> bool:
        """Whether each answered ping of a Connected host also syncs its VMs' states."""
        ...

    def ping_fields(self) -> Mapping[str, Any]:
        """What a ping command carries to have the host's VM states in its answer."""
        ...

    def states_in_ping(self, answer: Mapping[str, Any]) -> VmStatesOnHost | None:
        """The VM states a ping's answer carries; None from an agent that does not add
        them (the node then asks with ``list_vm_states``)."""
        ...


@dataclass(frozen=True, slots=True)
class VmStartEvent:
    """A VM about to start on a host (after the host is chosen, volumes and NICs exist)."""

    spec: VmStartSpec
    is_new: bool  # True while CreateVmInstance runs; False for StartVmInstance


class VmBeforeStartExtension(Protocol):
    """Called in the VM's queue before the agent call, in registration order. Raise ZError
    to refuse: a create then rolls back, a start leaves the VM Stopped."""

    async def before_vm_start(self, event: VmStartEvent) -> None: ...


@dataclass(frozen=True, slots=True)
class VmPlacementEvent:
    """A VM arriving on, or leaving, a host: what network services follow (DHCP entries,
    EIPs, security-group rules live on the host that runs the VM).

    ``cause``: create, start, migrate (arriving on the target, leaving the source), stop,
    destroy, failed (an arrival that did not happen), sync (what the host reported: the VM
    stopped, or runs where we did not start it), or nic-detached (only ``nics`` leave: they
    were unplugged from the running VM, and their rows still exist).

    ``system_tags``: a create's own (the API records them only once the create ended);
    None: the VM's recorded tags hold what the VM asked for (``userdata::``, ...)."""

    vm_uuid: str
    host: VmHost
    nics: tuple[VmNicSpec, ...]
    cause: str
    hostname: str | None = None
    system_tags: tuple[str, ...] | None = None


class VmPlacementExtension(Protocol):
    """Called in the VM's queue, in registration order.

    - ``vm_arriving``: before the agent starts the VM on ``host`` or migrates it there.
      Raise ZError to refuse: the start or migration fails and every extension that had
      agreed hears ``vm_left`` with cause ``failed``.
    - ``vm_arrived``: the VM runs on ``host`` and the database says so. Errors are
      logged, never fatal: the VM runs.
    - ``vm_left``: the VM is no longer on ``host`` (stopped, destroyed, migrated away, or
      its arrival failed). Errors are logged, never fatal.
    """

    async def vm_arriving(self, event: VmPlacementEvent) -> None: ...

    async def vm_arrived(self, event: VmPlacementEvent) -> None: ...

    async def vm_left(self, event: VmPlacementEvent) -> None: ...


@dataclass(frozen=True, slots=True)
class VmNicsDeletion:
    """NICs whose rows are about to go: their VM is expunged, or they are detached from it
    (their L3 network is deleted), whatever the VM's state."""

    vm_uuid: str
    nic_uuids: tuple[str, ...]


class VmNicDeletionExtension(Protocol):
    """Called in the VM's queue before anything of the expunge or detach happens, in
    registration order, for what hangs on a NIC outside the database: rows that name a NIC
    go with it (foreign keys), but nothing tells the hosts and appliances that hold it (a
    stopped VM's NIC is a load balancer's backend on a router). Raise ZError to refuse:
    the expunge or detach fails and the VM and its NICs stay as they were."""

    async def vm_nics_deleting(self, event: VmNicsDeletion) -> None: ...
