"""The VM service's contract: the internal messages other services send it (the VM
engineer adds the API messages and inventories below)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, ClassVar

from pydantic import BaseModel, Field

from zstackpy.api.messages import Inventory
from zstackpy.core.bus.message import NeedReplyMessage, Reply
from zstackpy.services.network.inventories import UsedIpInventory
from zstackpy.services.volume.messages import VolumeInventory, VolumeView

VM_SERVICE = "vmInstance"
VM_RESOURCE_TYPE = "VmInstanceVO"


class VmErr(StrEnum):
    """Codes of the VM domain (listed in docs/errors.md)."""

    WRONG_STATE = "VM.1001"  # an operation the VM's current state does not allow
    INVALID_SPEC = "VM.1002"  # parameters that contradict each other or the VM
    RESOURCE_NOT_READY = "VM.1003"  # an image, offering or L3 the VM needs is not usable
    MIGRATION_REFUSED = "VM.1004"  # e.g. a VM on local storage, or the target is its host


class VmState(StrEnum):
    CREATED = "Created"
    STARTING = "Starting"
    RUNNING = "Running"
    STOPPING = "Stopping"
    STOPPED = "Stopped"
    REBOOTING = "Rebooting"
    PAUSING = "Pausing"
    PAUSED = "Paused"
    RESUMING = "Resuming"
    MIGRATING = "Migrating"
    DESTROYING = "Destroying"
    DESTROYED = "Destroyed"
    EXPUNGING = "Expunging"
    UNKNOWN = "Unknown"
    ERROR = "Error"
    # What a host can report of a guest that is defined there but not well: it died
    # (Crashed), or the hypervisor cannot tell (NoState). The VM keeps its host.
    CRASHED = "Crashed"
    NO_STATE = "NoState"


class AttachVolumeToVmMsg(NeedReplyMessage):
    """Attach a Ready data volume to a VM, in the VM's queue: a Running VM gets it live
    (``/vm/attachdatavolume`` on its host), a Stopped one at its next start. Answers the
    device id given. VM.1001 in any other state."""

    service: ClassVar[str] = VM_SERVICE
    route_by: ClassVar[str | None] = "vm_instance_uuid"
    vm_instance_uuid: str
    volume: VolumeView


class AttachVolumeToVmReply(Reply):
    device_id: int = 0


class DetachVolumeFromVmMsg(NeedReplyMessage):
    """Detach a data volume from a VM, in the VM's queue (live when Running)."""

    service: ClassVar[str] = VM_SERVICE
    route_by: ClassVar[str | None] = "vm_instance_uuid"
    vm_instance_uuid: str
    volume: VolumeView


class GetVmPlacementMsg(NeedReplyMessage):
    """Where a VM is: its state, host and cluster (volumes need it to reach the VM's
    storage; snapshots need the VM stopped or its host)."""

    service: ClassVar[str] = VM_SERVICE
    vm_instance_uuid: str


class GetVmPlacementReply(Reply):
    state: str = ""
    host_uuid: str | None = None
    last_host_uuid: str | None = None
    cluster_uuid: str | None = None
    zone_uuid: str | None = None
    volumes_size: int = Field(default=0, ge=0)


# ----- additions of the VM service (below the lead's contract) ---------------------------


class VmNicInventory(Inventory):
    uuid: str
    vm_instance_uuid: str
    l3_network_uuid: str
    ip: str | None = None
    mac: str
    hypervisor_type: str | None = None
    netmask: str | None = None
    gateway: str | None = None
    meta_data: str | None = None
    ip_version: int = 4
    driver_type: str | None = None
    used_ips: list[UsedIpInventory] = Field(default_factory=list)
    internal_name: str
    device_id: int
    type: str
    state: str
    create_date: datetime
    last_op_date: datetime


class VmInstanceInventory(Inventory):
    uuid: str
    name: str
    description: str | None = None
    zone_uuid: str
    cluster_uuid: str | None = None
    image_uuid: str | None = None
    host_uuid: str | None = None
    last_host_uuid: str | None = None
    instance_offering_uuid: str | None = None
    root_volume_uuid: str | None = None
    platform: str | None = None
    architecture: str | None = None
    default_l3_network_uuid: str | None = None
    type: str
    hypervisor_type: str | None = None
    memory_size: int
    reserved_memory_size: int = 0
    cpu_num: int
    cpu_speed: int = 0
    allocator_strategy: str | None = None
    create_date: datetime
    last_op_date: datetime
    state: str
    vm_nics: list[VmNicInventory] = Field(default_factory=list)
    all_volumes: list[VolumeInventory] = Field(default_factory=list)
    vm_cd_roms: list[dict[str, Any]] = Field(default_factory=list)  # no CD-ROMs modelled yet
    guest_os_type: str | None = None


class DeleteVmMsg(NeedReplyMessage):
    """Internal: destroy a VM and expunge it at once, whatever ``vm deletionPolicy`` says
    (the cascade of its zone). Idempotent: an unknown VM answers success."""

    service: ClassVar[str] = VM_SERVICE
    route_by: ClassVar[str | None] = "vm_instance_uuid"
    vm_instance_uuid: str


class StopVmOnDeletedHostMsg(NeedReplyMessage):
    """Internal: the VM's host is being deleted: stop the VM there (cold) if the host
    still answers, and in any case leave it Stopped with its capacity given back and no
    host. A VM in no running state is left as it is."""

    service: ClassVar[str] = VM_SERVICE
    route_by: ClassVar[str | None] = "vm_instance_uuid"
    vm_instance_uuid: str
    host_uuid: str


class DetachNicFromVmMsg(NeedReplyMessage):
    """Internal: the NIC's L3 network is being deleted: the NIC goes (its address too,
    unless the L3's own delete removes it), in the VM's queue."""

    service: ClassVar[str] = VM_SERVICE
    route_by: ClassVar[str | None] = "vm_instance_uuid"
    vm_instance_uuid: str
    vm_nic_uuid: str
    release_ip: bool = True


class CreateApplianceVmMsg(NeedReplyMessage):
    """Internal: create and start an appliance VM (a virtual router, ...) through the VM
    flows (``flows/appliance-vm.yaml``), in the new VM's queue. Its NICs are on
    ``l3_network_uuids`` in that order; the VM belongs to ``account_uuid``. A failure
    leaves nothing, as a failed CreateVmInstance."""

    service: ClassVar[str] = VM_SERVICE
    route_by: ClassVar[str | None] = "vm_uuid"
    vm_uuid: str
    name: str
    appliance_vm_type: str
    image_uuid: str
    instance_offering_uuid: str
    l3_network_uuids: list[str]
    default_l3_network_uuid: str
    zone_uuid: str
    account_uuid: str


class CreateApplianceVmReply(Reply):
    inventory: VmInstanceInventory | None = None


class VmRowStamp(BaseModel):
    """What identifies one version of a VM's row: its state, host and last change."""

    state: str
    host_uuid: str | None
    last_op_date: datetime


class ReconcileVmStateMsg(NeedReplyMessage):
    """Internal: what ``host_uuid`` says of the VM: Running, Paused, Crashed, NoState or
    Stopped (it does not run it), or Unknown (the host is unreachable). Handled in the
    VM's queue.

    ``expected`` is the VM's row as read *before* the host was asked (a sync's snapshot):
    when the row differs by the time the correction's turn comes, an operation changed the
    VM after the host answered, and the report, older than that, is dropped."""

    service: ClassVar[str] = VM_SERVICE
    route_by: ClassVar[str | None] = "vm_instance_uuid"
    vm_instance_uuid: str
    host_uuid: str
    state: str
    expected: VmRowStamp | None = None


class DestroyStrangeVmMsg(NeedReplyMessage):
    """Internal: ``host_uuid`` runs a guest with this uuid and no VM row names it (an
    orphan, e.g. of a creation whose rollback could not reach the host). Handled in the
    VM's queue on its owner, after any operation on that uuid: the guest is destroyed only
    if the database still does not know it then."""

    service: ClassVar[str] = VM_SERVICE
    route_by: ClassVar[str | None] = "vm_instance_uuid"
    vm_instance_uuid: str
    host_uuid: str


class DestroyStrangeVmReply(Reply):
    destroyed: bool = False  # false: the database knows the VM now; the guest is left
