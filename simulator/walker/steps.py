"""The walker's actions as data: what the action log holds and what replay re-runs.

A step names VMs and hosts by their index in the walk (VM 3 is the fourth VM the walk
created, host 0 the first host it added), never by uuid, so a log replays on a fresh
node whose uuids differ.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

# One VM operation over REST each; "create" makes a VM, the rest act on one.
VM_OPS = (
    "start",
    "stop",
    "reboot",
    "pause",
    "resume",
    "migrate",
    "destroy",
    "recover",
    "expunge",
)
# Operations sent together on one VM by a "concurrent" step.
CONCURRENT_OPS = ("start", "stop", "reboot", "pause", "resume")
# Agent command paths an "agent-error" or "lost-callback" fault can hit.
FAULT_PATHS = (
    "/vm/start",
    "/vm/stop",
    "/vm/reboot",
    "/vm/pause",
    "/vm/resume",
    "/vm/destroy",
    "/vm/migrate",
    "/vm/volume/takesnapshot",
)
# The flat provider's commands for one EIP or port-forwarding rule put on (apply) or taken
# off (delete) the host running its VM: sent only by the EIP, rule and VIP operations, so
# the model knows which step reaches them and what a refusal leaves (the operation is
# refused with the host's error and changes nothing: docs/network-services.md).
EIP_APPLY = "/flatnetworkprovider/eip/apply"
EIP_DELETE = "/flatnetworkprovider/eip/delete"
PF_APPLY = "/flatnetworkprovider/portforwarding/apply"
PF_DELETE = "/flatnetworkprovider/portforwarding/delete"
NETWORK_SERVICE_PATHS = (EIP_APPLY, EIP_DELETE, PF_APPLY, PF_DELETE)
# A host's whole security-group rule set. A group's change sends it to every host running
# a member (refused: the change is undone), a member VM's start to its host (refused: the
# start fails); a stop, a destroy, a migration's source and a reconnect send it too, and
# what a refusal there leaves is not in the model: an agent error waiting on it is
# withdrawn before any step but a group's change or a start on a named host.
SG_REFRESH = "/securitygroup/refreshrulesonhost"
NETWORK_PATHS = (SG_REFRESH, *NETWORK_SERVICE_PATHS)
FAULT_KINDS = ("agent-error", "lost-callback", "host-outage")
# Data volume operations: make one (1 GiB), attach it to a VM, detach it, delete it.
VOLUME_OPS = ("volume-create", "volume-attach", "volume-detach", "volume-delete")
# Volume snapshots: take one of a VM's root volume (``vm``) or of a data volume
# (``volume``); revert its volume to one, delete one with its descendants (``snapshot``).
SNAPSHOT_OPS = ("snapshot-create", "snapshot-revert", "snapshot-delete")
# Images on the backup storage: add one from a URL (``bad``: one the storage cannot
# download), delete, recover, expunge one (``image``; 0 is the image every VM boots from).
IMAGE_OPS = ("image-add", "image-delete", "image-recover", "image-expunge")
# Security groups (on the walk's L3): make one, add a rule (an ingress TCP ``port``), delete
# a rule (``rule``), add or remove a VM's NIC (``vm``), delete one (``group``).
SG_OPS = ("sg-create", "sg-rule-add", "sg-rule-delete", "sg-join", "sg-leave", "sg-delete")
SG_PORTS = (22, 80, 443)
# VIPs on the walk's public L3 and EIPs on them: take a VIP, delete one (``vip``); make an
# EIP on a VIP, attach it to a VM's NIC (``vm``), detach it, delete it (``eip``).
EIP_OPS = ("vip-create", "vip-delete", "eip-create", "eip-attach", "eip-detach", "eip-delete")
# Port-forwarding rules on the walk's VIPs (the flat provider DNATs them on the host running
# the VM): make one forwarding a VIP's TCP ``port`` to the same port of a NIC, attach it to
# a VM's NIC (``vm``), detach it, delete it, rename it, enable or disable it (``enable``)
# (``pf``: its walk index).
PF_OPS = ("pf-create", "pf-attach", "pf-detach", "pf-delete", "pf-update", "pf-state")
PF_PORTS = (22, 80)
# Load balancers (the walk's L3 takes LoadBalancer from its virtual router): make one on a
# VIP (``vip``), delete one (``lb``), add a listener on a TCP ``port`` (``lb``), delete one
# (``listener``), add or remove a VM's NIC (``vm``) as a listener's backend.
LB_OPS = ("lb-create", "lb-delete", "listener-create", "listener-delete", "lb-add", "lb-remove")
LB_PORTS = (80, 443)
# The virtual router's load-balancer commands (its agent on the appliance): a "router-error"
# step makes the next one fail. A load balancer's change sends the router what it should
# hold (refused: the change is undone); so do a backend VM's destroy and expunge and a
# VIP's delete, where the model does not follow a refusal: the error is withdrawn before
# any step but a load balancer's own.
REFRESH_LB = "/refreshlb"
DELETE_LB = "/deletelb"
ROUTER_PATHS = (REFRESH_LB, DELETE_LB)


@dataclass(frozen=True, slots=True)
class Step:
    """One action of a walk.

    ``op``: "create", one of VM_OPS, "concurrent" (``ops`` on ``vm`` at once) or a fault
    (FAULT_KINDS). ``vm`` and ``host`` are walk indexes (no ``host`` for a create, start
    or migrate: the node's allocator chooses); ``path`` is the agent command a
    fault hits; ``lose_vm`` makes a host outage take that VM (walk index) down with it;
    ``volume`` is a data volume's walk index (VOLUME_OPS; an attach names ``vm`` too);
    ``snapshot`` a snapshot's walk index (SNAPSHOT_OPS; a create names the volume: ``vm``
    for that VM's root volume, or ``volume``); ``image`` an image's walk index
    (IMAGE_OPS), ``bad`` an invalid variant's mark (an image-add from a bad URL);
    ``group``, ``rule`` and ``port`` a security group's and a rule's walk indexes and a
    rule's port (SG_OPS); ``vip`` and ``eip`` walk indexes of a VIP and an EIP (EIP_OPS);
    ``pf`` a port-forwarding rule's (PF_OPS: a create names ``vip`` and ``port``, a state
    change ``enable``); ``lb`` and ``listener`` a load balancer's and a listener's
    (LB_OPS).
    """

    op: str
    vm: int | None = None
    host: int | None = None
    ops: tuple[str, ...] = field(default=())
    path: str | None = None
    lose_vm: int | None = None
    volume: int | None = None
    snapshot: int | None = None
    image: int | None = None
    bad: bool = False
    group: int | None = None
    rule: int | None = None
    port: int | None = None
    vip: int | None = None
    eip: int | None = None
    pf: int | None = None
    enable: bool | None = None
    lb: int | None = None
    listener: int | None = None

    def to_json(self) -> dict[str, Any]:
        """The compact form: fields left at their default are omitted."""
        out: dict[str, Any] = {}
        for key, value in asdict(self).items():
            if value is None or value == () or (key == "bad" and value is False):
                continue
            out[key] = list(value) if isinstance(value, tuple) else value
        return out

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> Step:
        return cls(
            op=str(raw["op"]),
            vm=raw.get("vm"),
            host=raw.get("host"),
            ops=tuple(raw.get("ops", ())),
            path=raw.get("path"),
            lose_vm=raw.get("lose_vm"),
            volume=raw.get("volume"),
            snapshot=raw.get("snapshot"),
            image=raw.get("image"),
            bad=bool(raw.get("bad", False)),
            group=raw.get("group"),
            rule=raw.get("rule"),
            port=raw.get("port"),
            vip=raw.get("vip"),
            eip=raw.get("eip"),
            pf=raw.get("pf"),
            enable=raw.get("enable"),
            lb=raw.get("lb"),
            listener=raw.get("listener"),
        )

    def __str__(self) -> str:
        args = ", ".join(f"{k}={v}" for k, v in self.to_json().items() if k != "op")
        return f"{self.op}({args})"
