"""The model: what the cloud should hold, and for each action its precondition and effect.

The model is written from the API's documented behaviour (docs/errors.md, the VM state
machine as the API reference describes it), not from the node's code: checking the node
against a copy of itself would find nothing. It knows the hosts, their free CPU and
memory, the addresses in use, every VM the walk made (its state and host), its data
volumes, volume snapshots (their trees and the one each volume rests on), images,
security groups (rules, members), VIPs, EIPs and port-forwarding rules
(``forwarding.py``), and the agent faults waiting on the simulated hosts.

``expect(step)`` is the precondition side: the outcome the node must answer (done, or
refused with one of some error codes). ``apply(step, ...)`` is the effect: the model's
state after the step, given the outcome it expected.
"""

from __future__ import annotations

import copy
import itertools
from dataclasses import dataclass, field

from simulator.walker.balancers import (
    LbModel,
    ListenerModel,
    apply_lb,
    expect_lb,
    fired,
    leave_listeners,
)
from simulator.walker.forwarding import (
    PfModel,
    User,
    apply_pf,
    apply_vip_delete,
    expect_pf,
    expect_vip_delete,
    reaches,
    refused,
)
from simulator.walker.steps import SG_REFRESH, Step

RUNNING, STOPPED, PAUSED, DESTROYED, EXPUNGED = (
    "Running",
    "Stopped",
    "Paused",
    "Destroyed",
    "Expunged",  # the model's own mark: the API no longer knows the VM
)
ON_HOST = frozenset({RUNNING, PAUSED})
# The states the API shows only while an operation runs: never between two steps.
TRANSITIONAL = frozenset(
    {
        "Created",
        "Starting",
        "Stopping",
        "Rebooting",
        "Pausing",
        "Resuming",
        "Migrating",
        "Destroying",
        "Expunging",
        "Unknown",
    }
)
# Which states allow each VM operation, as the API reference states them.
ALLOWED: dict[str, frozenset[str]] = {
    "start": frozenset({STOPPED}),
    "stop": frozenset({RUNNING, PAUSED}),
    "reboot": frozenset({RUNNING}),
    "pause": frozenset({RUNNING}),
    "resume": frozenset({PAUSED}),
    "migrate": frozenset({RUNNING}),
    "destroy": frozenset({RUNNING, STOPPED, PAUSED}),
    "recover": frozenset({DESTROYED}),
    "expunge": frozenset({DESTROYED}),
}
# The agent command each operation sends to the VM's host (where a fault can wait).
AGENT_PATH: dict[str, str] = {
    "create": "/vm/start",
    "start": "/vm/start",
    "stop": "/vm/stop",
    "reboot": "/vm/reboot",
    "pause": "/vm/pause",
    "resume": "/vm/resume",
    "destroy": "/vm/destroy",
    "migrate": "/vm/migrate",  # on the VM's (source) host
}
# A live snapshot (the volume's VM Running or Paused) is taken by the VM's host.
LIVE_SNAPSHOT_PATH = "/vm/volume/takesnapshot"
NO_CAPACITY = frozenset({"HOST.1101", "HOST.1102"})
WRONG_STATE = frozenset({"VM.1001"})
NOT_FOUND = frozenset({"SYS.1003"})
AGENT_FAILED = frozenset({"AGENT.1003"})
NO_ADDRESS = frozenset({"L3.1005"})
HOST_NOT_CONNECTED = frozenset({"HOST.1002"})
# A VM whose host is down is Unknown: a stop or destroy is allowed and reaches for the
# host (refused: not Connected); anything else is refused for the state.
DOWN_OPS = ("stop", "reboot", "pause", "resume", "migrate", "destroy", "start")
VOLUME_IN_USE = frozenset({"VOLUME.1001"})
VOLUME_NOT_ATTACHED = frozenset({"VOLUME.1005"})
# A data volume attaches to a Running or Stopped VM (docs: not while Paused).
ATTACHABLE = frozenset({RUNNING, STOPPED})
# A snapshot is taken while the volume's VM is in one of these states (live on its host
# while it runs or is paused, by the storage otherwise), or of a detached volume.
SNAPSHOTTABLE = frozenset({RUNNING, PAUSED, STOPPED, DESTROYED})
# Revert, or delete a snapshot the volume's file rests on, only while its VM is Stopped.
VM_NOT_STOPPED = frozenset({"VOLUME.1006"})
VOLUME_WRONG_STATE = frozenset({"VOLUME.1001"})
DOWNLOAD_FAILED = frozenset({"IMAGE.1001"})
IMAGE_NOT_DELETED = frozenset({"IMAGE.1002"})
# A VM from an image that is not Ready (docs/errors.md: VM.1003).
IMAGE_NOT_READY = frozenset({"VM.1003"})
# An image's life on the backup storage (the walk's deletion policy is Delay: a delete
# keeps the files until the expunge).
IMAGE_READY, IMAGE_DELETED = "Ready", "Deleted"
DUPLICATE_RULE = frozenset({"SG.1001"})
VIP_IN_USE = frozenset({"VIP.1001"})
EIP_ATTACHED = frozenset({"EIP.1001"})
NIC_HAS_EIP = frozenset({"EIP.1003"})
EIP_NOT_ATTACHED = frozenset({"EIP.1004"})


@dataclass(frozen=True, slots=True)
class Expect:
    """The outcome a step must have: done (``ok``), or refused with a code in ``codes``
    (None: any structured error will do, the model does not pin the code)."""

    ok: bool
    codes: frozenset[str] | None = None

    def admits(self, ok: bool, code: str | None) -> bool:
        if ok or self.ok:
            return ok == self.ok
        return self.codes is None or code in self.codes

    def __str__(self) -> str:
        if self.ok:
            return "done"
        return "refused with " + (
            "any code" if self.codes is None else "/".join(sorted(self.codes))
        )


@dataclass(slots=True)
class HostModel:
    index: int
    ip: str
    uuid: str
    cpu: int  # available vCPUs with no VM on the host
    memory: int  # available bytes with no VM on the host


@dataclass(slots=True)
class VmModel:
    index: int
    uuid: str
    state: str
    host: int | None
    last_host: int | None
    root: str = ""  # its root volume's uuid
    nic: str = ""  # its NIC's uuid (one NIC, on the walk's L3)
    nic_ip: str = ""


@dataclass(slots=True)
class VolumeModel:
    """A data volume: ``ready`` once its first attach put it on the storage; ``vm`` the
    walk index of the VM it is attached to; ``gone`` once deleted (the default
    policy, Direct, removes it at once)."""

    index: int
    uuid: str
    ready: bool = False
    vm: int | None = None
    gone: bool = False


@dataclass(slots=True)
class SnapshotModel:
    """A volume snapshot: ``of`` is its volume's key (``volume_key``), ``parent`` the walk
    index of the snapshot it was taken on top of (None: a tree's root)."""

    index: int
    uuid: str
    of: str
    parent: int | None
    gone: bool = False


@dataclass(slots=True)
class ImageModel:
    """An image: ``status`` Ready or Deleted (EXPUNGED: the API no longer knows it);
    ``size`` the bytes it holds on the backup storage."""

    index: int
    uuid: str
    size: int
    status: str = IMAGE_READY


@dataclass(slots=True)
class GroupModel:
    """A security group attached to the walk's L3; ``members``: the VMs (walk indexes)
    whose NIC is in it."""

    index: int
    uuid: str
    members: set[int] = field(default_factory=set)
    gone: bool = False


@dataclass(slots=True)
class RuleModel:
    """An ingress TCP rule of group ``group`` for ``port`` from anywhere."""

    index: int
    uuid: str
    group: int
    port: int
    gone: bool = False


@dataclass(slots=True)
class VipModel:
    index: int
    uuid: str
    ip: str
    gone: bool = False


@dataclass(slots=True)
class EipModel:
    """An EIP on VIP ``vip``, attached to the NIC of VM ``vm`` (walk indexes)."""

    index: int
    uuid: str
    vip: int
    vm: int | None = None
    gone: bool = False


def volume_key(step: Step) -> str:
    """The volume a snapshot-create names: "root:<vm>" or "data:<volume>"."""
    return f"root:{step.vm}" if step.vm is not None else f"data:{step.volume}"


@dataclass
class CloudModel:
    """The expected state. ``vm_cpu``/``vm_memory``: what every VM takes (one offering);
    ``ip_capacity``: the addresses of the walk's L3 network."""

    hosts: list[HostModel]
    vm_cpu: int
    vm_memory: int
    ip_capacity: int
    vms: list[VmModel] = field(default_factory=list)
    volumes: list[VolumeModel] = field(default_factory=list)
    faults: dict[tuple[int, str], str] = field(default_factory=dict)  # (host, path) -> kind
    snapshots: list[SnapshotModel] = field(default_factory=list)
    # The snapshot each volume's file rests on (the API's ``latest``), by volume key.
    latest: dict[str, int] = field(default_factory=dict)
    # Image 0 is the one every VM is created from (its bytes are in the baseline).
    images: list[ImageModel] = field(default_factory=list)
    image_size: int = 256 * 1024**2  # of each image the walk adds
    groups: list[GroupModel] = field(default_factory=list)
    public_ip_capacity: int = 3  # the public L3's addresses, for VIPs
    vips: list[VipModel] = field(default_factory=list)
    eips: list[EipModel] = field(default_factory=list)
    rules: list[RuleModel] = field(default_factory=list)
    pfs: list[PfModel] = field(default_factory=list)
    lbs: list[LbModel] = field(default_factory=list)
    listeners: list[ListenerModel] = field(default_factory=list)
    # After a VIP delete a host refused: the groups of its users that met one refusal
    # each (one of each group stays); ``actions`` settles them from the API's answer.
    unsettled: list[list[User]] = field(default_factory=list)

    # ----- derived books ----------------------------------------------------------------

    def used_on(self, host: int) -> int:
        return sum(1 for vm in self.vms if vm.host == host and vm.state in ON_HOST)

    def free_cpu(self, host: int) -> int:
        return self.hosts[host].cpu - self.vm_cpu * self.used_on(host)

    def free_memory(self, host: int) -> int:
        return self.hosts[host].memory - self.vm_memory * self.used_on(host)

    def has_room(self, host: int) -> bool:
        return self.free_cpu(host) >= self.vm_cpu and self.free_memory(host) >= self.vm_memory

    def ips_used(self) -> int:
        """A Destroyed VM keeps its address (for a recover); an expunged one gave it back."""
        return sum(1 for vm in self.vms if vm.state != EXPUNGED)

    def storage_used(self) -> int:
        """Bytes the VMs take on primary storage: a root volume per VM not expunged (the
        image's size) and every data volume that was instantiated and not deleted."""
        volumes = sum(1 for v in self.volumes if v.ready and not v.gone)
        return self.vm_memory * (self.ips_used() + volumes)  # each is 1 GiB in the walk

    def attached_to(self, vm: int) -> set[str]:
        return {v.uuid for v in self.volumes if v.vm == vm and not v.gone}

    def backup_storage_used(self) -> int:
        """Bytes the walk's images hold on the backup storage (a Deleted one keeps them)."""
        return sum(i.size for i in self.images[1:] if i.status != EXPUNGED)

    def vip_used(self, vip: int) -> bool:
        """Whether an EIP, a port-forwarding rule or a load balancer uses the VIP."""
        return (
            any(e.vip == vip and not e.gone for e in self.eips)
            or any(p.vip == vip and not p.gone for p in self.pfs)
            or any(b.vip == vip and not b.gone for b in self.lbs)
        )

    def live_vips(self) -> list[VipModel]:
        return [v for v in self.vips if not v.gone]

    def eip_of_vm(self, vm: int) -> EipModel | None:
        return next((e for e in self.eips if not e.gone and e.vm == vm), None)

    def rules_of_nic(self, vm: int) -> set[int]:
        """The ports of the rules a host running VM ``vm`` must hold for its NIC."""
        groups = {g.index for g in self.groups if not g.gone and vm in g.members}
        return {r.port for r in self.rules if not r.gone and r.group in groups}

    def sg_refreshed(self, step: Step) -> set[int]:
        """The hosts a group change sends their rule sets to (when it is done): those
        running (or pausing) a member of the group before or after the change."""
        if step.op == "sg-rule-delete":
            assert step.rule is not None
            rule = self.rules[step.rule]
            if rule.gone:
                return set()  # nothing to do
            group = self.groups[rule.group]
        elif step.group is not None:
            group = self.groups[step.group]
        else:
            return set()  # a new group has no member
        members = set(group.members)
        if step.op == "sg-join":
            assert step.vm is not None
            members.add(step.vm)
        vms = (self.vms[m] for m in members)
        return {vm.host for vm in vms if vm.host is not None and vm.state in ON_HOST}

    def sg_refused(self, hosts: set[int]) -> bool:
        return any(self.faults.get((h, SG_REFRESH)) == "agent-error" for h in hosts)

    def sg_start_host(self, step: Step) -> int | None:
        """The host a start sends the VM's rule set to before it boots there (a member's
        start on a named host)."""
        if step.op != "start" or step.host is None or step.vm is None:
            return None
        return step.host if self.is_member(step.vm) else None

    def sg_withdrawn(self, step: Step) -> list[int]:
        """The hosts whose security-group agent error goes before ``step``: every one,
        unless ``step`` is a group's change or a start on a named host (what a refused
        refresh leaves after a stop, a destroy, a migration or a reconnect is not in the
        model; where an allocator's start goes is not known before)."""
        if step.op.startswith("sg-") or (step.op == "start" and step.host is not None):
            return []
        if step.op in ("agent-error", "lost-callback"):
            return []
        return [
            h
            for (h, path), kind in self.faults.items()
            if path == SG_REFRESH and kind == "agent-error"
        ]

    def is_member(self, vm: int) -> bool:
        return any(vm in g.members for g in self.groups if not g.gone)

    def live_snapshots(self) -> list[SnapshotModel]:
        return [s for s in self.snapshots if not s.gone]

    def volume_vm(self, key: str) -> VmModel | None:
        """The VM a volume (by key) is attached to, as the node sees it: None when the
        volume is detached (or its VM is expunged)."""
        kind, _, number = key.partition(":")
        if kind == "root":
            vm = self.vms[int(number)]
        else:
            attached = self.volumes[int(number)].vm
            if attached is None:
                return None
            vm = self.vms[attached]
        return None if vm.state == EXPUNGED else vm

    def descendants(self, index: int) -> set[int]:
        found, frontier = {index}, [index]
        while frontier:
            parent = frontier.pop()
            for s in self.snapshots:
                if s.parent == parent and not s.gone and s.index not in found:
                    found.add(s.index)
                    frontier.append(s.index)
        return found

    def chain(self, key: str) -> set[int]:
        """The snapshots the volume's file rests on: its latest and every ancestor."""
        found: set[int] = set()
        at = self.latest.get(key)
        while at is not None and at not in found:
            found.add(at)
            at = self.snapshots[at].parent
        return found

    def _drop_snapshots_of(self, key: str) -> None:
        """A volume that goes takes its snapshots with it."""
        for s in self.snapshots:
            if s.of == key:
                s.gone = True
        self.latest.pop(key, None)

    def live_vms(self) -> list[VmModel]:
        return [vm for vm in self.vms if vm.state != EXPUNGED]

    def start_host(self, vm: VmModel) -> int:
        """Where the walker asks a start to go: the VM's last host while it has room,
        else the first host with room (else the last host, which must refuse)."""
        last = vm.last_host if vm.last_host is not None else 0
        if self.has_room(last):
            return last
        return next((h.index for h in self.hosts if self.has_room(h.index)), last)

    # ----- precondition -----------------------------------------------------------------

    def refers_well(self, step: Step) -> bool:
        """Whether the VM and hosts ``step`` names exist (a log with steps removed may
        name a VM that was never made, or lose a VM its host no longer runs)."""
        if step.vm is not None and step.vm >= len(self.vms):
            return False
        if step.volume is not None and step.volume >= len(self.volumes):
            return False
        if step.host is not None and step.host >= len(self.hosts):
            return False
        if step.snapshot is not None and step.snapshot >= len(self.snapshots):
            return False
        if step.image is not None and step.image >= len(self.images):
            return False
        if step.group is not None and step.group >= len(self.groups):
            return False
        if step.rule is not None and step.rule >= len(self.rules):
            return False
        if step.vip is not None and step.vip >= len(self.vips):
            return False
        if step.eip is not None and step.eip >= len(self.eips):
            return False
        if step.pf is not None and step.pf >= len(self.pfs):
            return False
        if step.lb is not None and step.lb >= len(self.lbs):
            return False
        if step.listener is not None and step.listener >= len(self.listeners):
            return False
        outage_vm = step.vm if step.op == "host-outage" else None
        if outage_vm is not None and self.vms[outage_vm].host != step.host:
            return False
        lose = step.lose_vm
        return lose is None or (lose < len(self.vms) and self.vms[lose].host == step.host)

    def _fault(self, host: int | None, op: str) -> str | None:
        path = AGENT_PATH.get(op)
        if host is None or path is None:
            return None
        return self.faults.get((host, path))

    def placeable(self, op: str, exclude: int | None = None) -> list[int]:
        """The hosts an allocator may choose for ``op``: room, and not ``exclude``."""
        return [h.index for h in self.hosts if h.index != exclude and self.has_room(h.index)]

    def may_allocate(self, op: str) -> bool:
        """Whether the walk may leave the host to the allocator for ``op``: not while an
        agent error waits on some host for it (which host fails would be the allocator's
        pick, and the model could not say which fault fired)."""
        path = AGENT_PATH.get(op)
        return not any(kind == "agent-error" and p == path for (_, p), kind in self.faults.items())

    def expect(self, step: Step) -> Expect:
        """The outcome ``step`` must have (create and single VM operations). A create,
        start or migrate without ``host`` leaves the choice to the node's allocator."""
        if step.op.startswith("volume-"):
            return self._expect_volume(step)
        if step.op.startswith("snapshot-"):
            return self._expect_snapshot(step)
        if step.op.startswith("image-"):
            return self._expect_image(step)
        if step.op.startswith("sg-"):
            return self._expect_group(step)
        if step.op.startswith(("vip-", "eip-")):
            return self._expect_eip(step)
        if step.op.startswith("pf-"):
            ok, refusal = expect_pf(self, step)
            return Expect(ok, refusal)
        if step.op.startswith(("lb-", "listener-")):
            ok, refusal = expect_lb(self, step)
            return Expect(ok, refusal)
        if step.op == "create":
            if self.images and self.images[0].status != IMAGE_READY:
                # The image is refused; a lack of room or address may be named first.
                codes = set(IMAGE_NOT_READY)
                room = self.placeable("create") if step.host is None else [step.host]
                if not any(self.has_room(h) for h in room):
                    codes |= NO_CAPACITY
                if self.ips_used() >= self.ip_capacity:
                    codes |= NO_ADDRESS
                return Expect(False, frozenset(codes))
            if step.host is None:
                if not self.placeable("create"):
                    return Expect(False, NO_CAPACITY)
            elif not self.has_room(step.host):
                return Expect(False, NO_CAPACITY)
            if self.ips_used() >= self.ip_capacity:
                return Expect(False, NO_ADDRESS)
            if self._fault(step.host, "create") == "agent-error":
                return Expect(False, AGENT_FAILED)
            return Expect(True)
        assert step.vm is not None
        vm = self.vms[step.vm]
        if vm.state == EXPUNGED:
            return Expect(False, NOT_FOUND)
        if vm.state not in ALLOWED[step.op]:
            return Expect(False, WRONG_STATE)
        if step.op == "start":
            if step.host is None:
                if not self.placeable("start"):
                    return Expect(False, NO_CAPACITY)
            elif not self.has_room(step.host):
                return Expect(False, NO_CAPACITY)
        if step.op == "migrate":
            if step.host is None:
                if not self.placeable("migrate", exclude=vm.host):
                    return Expect(False, NO_CAPACITY)
            elif step.host == vm.host or not self.has_room(step.host):
                return Expect(False, None)
        sg_host = self.sg_start_host(step)
        if sg_host is not None and self.sg_refused({sg_host}):
            return Expect(False, AGENT_FAILED)  # the rules before the boot: refused
        on = step.host if step.op == "start" else vm.host
        if self._fault(on, step.op) == "agent-error":
            return Expect(False, AGENT_FAILED)
        return Expect(True)

    def _expect_volume(self, step: Step) -> Expect:
        if step.op == "volume-create":
            return Expect(True)
        assert step.volume is not None
        volume = self.volumes[step.volume]
        if volume.gone:
            return Expect(False, NOT_FOUND)
        if step.op == "volume-delete":
            return Expect(True)
        if step.op == "volume-detach":
            return Expect(True) if volume.vm is not None else Expect(False, VOLUME_NOT_ATTACHED)
        assert step.vm is not None
        vm = self.vms[step.vm]
        # Several reasons may hold at once; the node may name any of them.
        codes: set[str] = set()
        if vm.state == EXPUNGED:
            codes |= NOT_FOUND
        elif vm.state not in ATTACHABLE:
            codes |= WRONG_STATE
        if volume.vm is not None:
            codes |= VOLUME_IN_USE
        return Expect(False, frozenset(codes)) if codes else Expect(True)

    def _expect_snapshot(self, step: Step) -> Expect:
        if step.op == "snapshot-create":
            if step.vm is not None:
                state = self.vms[step.vm].state
                if state == EXPUNGED:  # its root volume went with it
                    return Expect(False, NOT_FOUND)
                if state == DESTROYED:  # its root volume is Deleted until the expunge
                    return Expect(False, VOLUME_WRONG_STATE)
            else:
                assert step.volume is not None
                volume = self.volumes[step.volume]
                if volume.gone:
                    return Expect(False, NOT_FOUND)
                if not volume.ready:  # no file yet
                    return Expect(False, VOLUME_WRONG_STATE)
            vm = self.volume_vm(volume_key(step))
            if vm is not None and vm.state not in SNAPSHOTTABLE:
                return Expect(False, WRONG_STATE)
            if self._live_snapshot_fault(step) == "agent-error":
                return Expect(False, AGENT_FAILED)
            return Expect(True)
        assert step.snapshot is not None
        snapshot = self.snapshots[step.snapshot]
        if snapshot.gone:
            return Expect(False, NOT_FOUND)
        vm = self.volume_vm(snapshot.of)
        stopped = vm is None or vm.state == STOPPED
        if step.op == "snapshot-revert":
            return Expect(True) if stopped else Expect(False, VM_NOT_STOPPED)
        # A delete folds the snapshot into the volume's file when the file rests on it.
        rests_on = bool(self.descendants(snapshot.index) & self.chain(snapshot.of))
        return Expect(False, VM_NOT_STOPPED) if rests_on and not stopped else Expect(True)

    def _expect_image(self, step: Step) -> Expect:
        if step.op == "image-add":
            return Expect(False, DOWNLOAD_FAILED) if step.bad else Expect(True)
        assert step.image is not None
        status = self.images[step.image].status
        if status == EXPUNGED:
            return Expect(False, NOT_FOUND)
        if step.op == "image-delete":
            return Expect(True)  # a Deleted image's delete has nothing left to do
        if status != IMAGE_DELETED:  # recover and expunge act on Deleted images only
            return Expect(False, IMAGE_NOT_DELETED)
        return Expect(True)

    def _expect_group(self, step: Step) -> Expect:
        if step.op == "sg-create":
            return Expect(True)
        if step.op == "sg-rule-delete":
            # a rule already gone: nothing to do, as deletes go
            refused = self.sg_refused(self.sg_refreshed(step))
            return Expect(False, AGENT_FAILED) if refused else Expect(True)
        assert step.group is not None
        group = self.groups[step.group]
        codes: set[str] = set()
        if group.gone:
            codes |= NOT_FOUND
        if step.op == "sg-rule-add":
            taken = any(
                r.group == group.index and r.port == step.port and not r.gone for r in self.rules
            )
            if taken:
                codes |= DUPLICATE_RULE
        if step.op in ("sg-join", "sg-leave"):
            assert step.vm is not None
            if self.vms[step.vm].state == EXPUNGED:  # its NIC went with it
                codes |= NOT_FOUND
        if codes:
            return Expect(False, frozenset(codes))
        # the hosts running members get their sets; one refusing undoes the change
        return (
            Expect(False, AGENT_FAILED)
            if self.sg_refused(self.sg_refreshed(step))
            else Expect(True)
        )

    def _expect_eip(self, step: Step) -> Expect:
        if step.op == "vip-create":
            full = len(self.live_vips()) >= self.public_ip_capacity
            return Expect(False, NO_ADDRESS) if full else Expect(True)
        codes: set[str] = set()
        if step.op in ("vip-delete", "eip-create"):
            assert step.vip is not None
            vip = self.vips[step.vip]
            if vip.gone:
                return Expect(False, NOT_FOUND)
            if step.op == "vip-delete":
                ok, refusal = expect_vip_delete(self, vip.index)
                return Expect(ok, refusal)
            if self.vip_used(vip.index):
                return Expect(False, VIP_IN_USE)
            return Expect(True)
        assert step.eip is not None
        eip = self.eips[step.eip]
        if eip.gone:
            return Expect(False, NOT_FOUND)
        if step.op == "eip-detach" and eip.vm is None:
            return Expect(False, EIP_NOT_ATTACHED)
        if step.op == "eip-attach":
            assert step.vm is not None
            # Several reasons may hold at once; the node may name any of them.
            if self.vms[step.vm].state == EXPUNGED:  # its NIC went with it
                codes |= NOT_FOUND
            elif self.eip_of_vm(step.vm) is not None:
                codes |= NIC_HAS_EIP
            if eip.vm is not None:
                codes |= EIP_ATTACHED
        if codes:
            return Expect(False, frozenset(codes))
        return Expect(False, AGENT_FAILED) if refused(self, reaches(self, step)) else Expect(True)

    def _live_snapshot_host(self, step: Step) -> int | None:
        """The host that takes the snapshot ``step`` creates, when it is a live one."""
        vm = self.volume_vm(volume_key(step))
        return vm.host if vm is not None and vm.state in ON_HOST else None

    def _live_snapshot_fault(self, step: Step) -> str | None:
        host = self._live_snapshot_host(step)
        return None if host is None else self.faults.get((host, LIVE_SNAPSHOT_PATH))

    # ----- effect -----------------------------------------------------------------------

    def apply(
        self, step: Step, expect: Expect, uuid: str | None = None, placed: int | None = None
    ) -> None:
        """The state after ``step`` had the outcome ``expect`` (``uuid``: a created VM's;
        ``placed``: the host the node chose when the step left it to the allocator)."""
        if step.op == "snapshot-create" and (expect.ok or expect.codes == AGENT_FAILED):
            live = self._live_snapshot_host(step)
            if live is not None:  # the command reached the host: a fault there fired
                self.faults.pop((live, LIVE_SNAPSHOT_PATH), None)
        if step.op == "vip-delete" and (expect.ok or expect.codes == AGENT_FAILED):
            assert step.vip is not None
            self.unsettled = apply_vip_delete(self, step.vip, expect.ok)
            return
        network = reaches(self, step)
        if network is not None and (expect.ok or expect.codes == AGENT_FAILED):
            self.faults.pop(network, None)  # the command reached the host: a fault fired
        if step.op.startswith("sg-") and (expect.ok or expect.codes == AGENT_FAILED):
            for h in self.sg_refreshed(step):  # each host was sent its set: faults fired
                self.faults.pop((h, SG_REFRESH), None)
        if step.op.startswith(("lb-", "listener-")) and (expect.ok or expect.codes == AGENT_FAILED):
            fired(self, step)
        sg_host = self.sg_start_host(step)
        if sg_host is not None and self.sg_refused({sg_host}) and expect.codes == AGENT_FAILED:
            # refused before the boot: the start's own agent commands were never sent
            self.faults.pop((sg_host, SG_REFRESH), None)
            return
        if sg_host is not None and expect.ok:
            self.faults.pop((sg_host, SG_REFRESH), None)
        target = step.host if step.host is not None else placed
        on = target if step.op in ("create", "start") else None
        if step.vm is not None and step.op != "create":
            on = on if on is not None else self.vms[step.vm].host
        path = AGENT_PATH.get(step.op)
        reached_host = expect.ok or expect.codes == AGENT_FAILED
        if on is not None and path is not None and reached_host:
            # the command reached the host: a fault waiting there fired once
            self.faults.pop((on, path), None)
        if on is not None and step.op in ("create", "start") and expect.codes == AGENT_FAILED:
            # a failed start is undone by a destroy there (the agent may have defined it)
            self.faults.pop((on, "/vm/destroy"), None)
        if not expect.ok:
            return
        if step.op.startswith("volume-"):
            self._apply_volume(step, uuid)
            return
        if step.op.startswith("snapshot-"):
            self._apply_snapshot(step, uuid)
            return
        if step.op.startswith("image-"):
            self._apply_image(step, uuid)
            return
        if step.op.startswith("sg-"):
            self._apply_group(step, uuid)
            return
        if step.op.startswith(("vip-", "eip-")):
            self._apply_eip(step, uuid)
            return
        if step.op.startswith("pf-"):
            apply_pf(self, step, uuid)
            return
        if step.op.startswith(("lb-", "listener-")):
            apply_lb(self, step, uuid)
            return
        if step.op == "create":
            assert uuid is not None
            assert target is not None
            self.vms.append(VmModel(len(self.vms), uuid, RUNNING, target, target))
            return
        assert step.vm is not None
        vm = self.vms[step.vm]
        if step.op == "start":
            vm.state, vm.host, vm.last_host = RUNNING, target, target
        elif step.op == "stop":
            vm.state, vm.host, vm.last_host = STOPPED, None, vm.host
        elif step.op in ("reboot", "resume"):
            vm.state = RUNNING
        elif step.op == "pause":
            vm.state = PAUSED
        elif step.op == "migrate":
            vm.host, vm.last_host = target, vm.host
        elif step.op == "destroy":
            if vm.state in ON_HOST:  # destroyed on its host: its NIC leaves the listeners
                leave_listeners(self, vm.index)
            if vm.host is not None:
                vm.last_host = vm.host
            vm.state, vm.host = DESTROYED, None
        elif step.op == "recover":
            vm.state = STOPPED
        elif step.op == "expunge":
            vm.state = EXPUNGED
            self._drop_snapshots_of(f"root:{vm.index}")
            for group in self.groups:  # its NIC went, and its memberships with it
                group.members.discard(vm.index)
            for eip in self.eips:  # and its EIP and rules are detached
                if eip.vm == vm.index:
                    eip.vm = None
            for pf in self.pfs:
                if pf.vm == vm.index:
                    pf.vm = None
            leave_listeners(self, vm.index)
            for volume in self.volumes:  # expunging a VM detaches its data volumes
                if volume.vm == vm.index:
                    volume.vm = None

    def _apply_volume(self, step: Step, uuid: str | None) -> None:
        if step.op == "volume-create":
            assert uuid is not None
            self.volumes.append(VolumeModel(len(self.volumes), uuid))
            return
        assert step.volume is not None
        volume = self.volumes[step.volume]
        if step.op == "volume-attach":
            volume.vm, volume.ready = step.vm, True
        elif step.op == "volume-detach":
            volume.vm = None
        elif step.op == "volume-delete":
            volume.vm, volume.gone = None, True
            self._drop_snapshots_of(f"data:{volume.index}")

    def _apply_eip(self, step: Step, uuid: str | None) -> None:
        if step.op == "vip-create":
            assert uuid is not None
            self.vips.append(VipModel(len(self.vips), uuid, ""))  # the caller sets the ip
        elif step.op == "eip-create":
            assert uuid is not None
            assert step.vip is not None
            self.eips.append(EipModel(len(self.eips), uuid, step.vip))
        else:
            assert step.eip is not None
            eip = self.eips[step.eip]
            if step.op == "eip-attach":
                eip.vm = step.vm
            elif step.op == "eip-detach":
                eip.vm = None
            else:
                eip.gone, eip.vm = True, None

    def _apply_group(self, step: Step, uuid: str | None) -> None:
        if step.op == "sg-create":
            assert uuid is not None
            self.groups.append(GroupModel(len(self.groups), uuid))
            return
        if step.op == "sg-rule-delete":
            assert step.rule is not None
            self.rules[step.rule].gone = True
            return
        assert step.group is not None
        group = self.groups[step.group]
        if step.op == "sg-rule-add":
            assert uuid is not None
            assert step.port is not None
            self.rules.append(RuleModel(len(self.rules), uuid, group.index, step.port))
        elif step.op == "sg-join":
            assert step.vm is not None
            group.members.add(step.vm)
        elif step.op == "sg-leave":
            assert step.vm is not None
            group.members.discard(step.vm)
        elif step.op == "sg-delete":
            group.gone, group.members = True, set()
            for rule in self.rules:
                if rule.group == group.index:
                    rule.gone = True

    def _apply_image(self, step: Step, uuid: str | None) -> None:
        if step.op == "image-add":
            assert uuid is not None
            self.images.append(ImageModel(len(self.images), uuid, self.image_size))
            return
        assert step.image is not None
        image = self.images[step.image]
        image.status = {
            "image-delete": IMAGE_DELETED,
            "image-recover": IMAGE_READY,
            "image-expunge": EXPUNGED,
        }[step.op]

    def _apply_snapshot(self, step: Step, uuid: str | None) -> None:
        if step.op == "snapshot-create":
            assert uuid is not None
            key = volume_key(step)
            index = len(self.snapshots)
            self.snapshots.append(SnapshotModel(index, uuid, key, self.latest.get(key)))
            self.latest[key] = index
            return
        assert step.snapshot is not None
        snapshot = self.snapshots[step.snapshot]
        if step.op == "snapshot-revert":
            self.latest[snapshot.of] = snapshot.index
            return
        doomed = self.descendants(snapshot.index)
        if doomed & self.chain(snapshot.of):
            # the file folded the snapshot in: it rests on the parent now (or on nothing)
            if snapshot.parent is None:
                self.latest.pop(snapshot.of, None)
            else:
                self.latest[snapshot.of] = snapshot.parent
        for index in doomed:
            self.snapshots[index].gone = True

    def expect_while_down(self, op: str) -> Expect:
        """``op`` on a VM whose host the node sees down (the VM Unknown)."""
        if op in ("stop", "destroy"):
            return Expect(False, HOST_NOT_CONNECTED)
        return Expect(False, WRONG_STATE)

    def set_fault(self, host: int, path: str, kind: str) -> None:
        """A fault on (host, path) replaces the one waiting there, as the simulator does."""
        self.faults[(host, path)] = kind

    def host_outage(self, host: int, lose_vm: int | None) -> None:
        """The host died and came back; the VM ``lose_vm`` died with it (Stopped), every
        other VM it ran runs again as it was."""
        if lose_vm is not None:
            vm = self.vms[lose_vm]
            vm.state, vm.host, vm.last_host = STOPPED, None, host

    # ----- concurrency ------------------------------------------------------------------

    def orders(self, vm: int, steps: list[Step]) -> list[tuple[list[Expect], CloudModel]]:
        """Every way ``steps`` on one VM can run one after the other (the VM's queue runs
        them in arrival order, which the network decides): each order's outcomes, in the
        order of ``steps``, and the model after it."""
        out = []
        for order in itertools.permutations(range(len(steps))):
            model = copy.deepcopy(self)
            outcomes: list[Expect | None] = [None] * len(steps)
            for i in order:
                expect = model.expect(steps[i])
                model.apply(steps[i], expect)
                outcomes[i] = expect
            out.append(([o for o in outcomes if o is not None], model))
        return out
