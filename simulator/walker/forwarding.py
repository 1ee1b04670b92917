"""The model's port-forwarding rules, and what the VIP users' host commands reach.

A rule forwards one TCP port of a VIP to the same port of a VM's NIC; the walk's L3 takes
PortForwarding from the flat provider, which DNATs an attached, Enabled rule on the host
running its VM (docs/network-services.md). Rules of one VIP share it, never a port
(VIP.1003), and no EIP shares a VIP with them (VIP.1001).

The flat provider's single-resource commands (``EIP_APPLY``, ``EIP_DELETE``, ``PF_APPLY``,
``PF_DELETE``) are sent only by EIP, rule and VIP operations, and only when the resource
is attached, Enabled and its VM runs (or is paused) on a host: ``reaches`` says where such
an operation would send one. A host that refuses it (an injected agent error) makes the
operation answer AGENT.1003 and change nothing; a VIP's delete tries each of its users
(in parallel), so the users whose command was refused stay, with the VIP, and the others
go.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from simulator.walker.balancers import drop_lb
from simulator.walker.steps import EIP_APPLY, EIP_DELETE, PF_APPLY, PF_DELETE, Step

if TYPE_CHECKING:
    from simulator.walker.model import CloudModel

VIP_IN_USE = frozenset({"VIP.1001"})
PORT_IN_USE = frozenset({"VIP.1003"})
PF_ATTACHED = frozenset({"PF.1001"})
PF_NOT_ATTACHED = frozenset({"PF.1003"})
NOT_FOUND = frozenset({"SYS.1003"})
AGENT_FAILED = frozenset({"AGENT.1003"})
ON_HOST = frozenset({"Running", "Paused"})
EXPUNGED = "Expunged"

# A VIP user: ("eip", walk index) or ("pf", walk index).
User = tuple[str, int]
Reach = tuple[int, str]  # (host, agent path)


@dataclass(slots=True)
class PfModel:
    """A port-forwarding rule of VIP ``vip`` for TCP ``port``, attached to the NIC of VM
    ``vm`` (walk indexes); ``enabled`` its state; ``name`` what it is called now."""

    index: int
    uuid: str
    vip: int
    port: int
    name: str
    vm: int | None = None
    enabled: bool = True
    gone: bool = False


def pf_name(model: CloudModel, step: Step) -> str:
    """The name a pf-create or pf-update gives (a rename appends what it is)."""
    if step.op == "pf-create":
        return f"walk-pf-{len(model.pfs)}"
    assert step.pf is not None
    return f"{model.pfs[step.pf].name}+"


def _host_of(model: CloudModel, vm: int | None) -> int | None:
    """Where a VM's NIC's NAT lives: its host while it runs or is paused."""
    if vm is None:
        return None
    row = model.vms[vm]
    return row.host if row.state in ON_HOST else None


def reaches(model: CloudModel, step: Step) -> Reach | None:
    """The host command an EIP or rule operation sends when the model admits it (None: it
    changes the database only)."""
    if step.op in ("eip-attach", "eip-detach", "eip-delete"):
        assert step.eip is not None
        eip = model.eips[step.eip]
        if step.op == "eip-attach":
            host = _host_of(model, step.vm)
            return None if host is None else (host, EIP_APPLY)
        host = _host_of(model, eip.vm)
        return None if host is None else (host, EIP_DELETE)
    if step.op in ("pf-attach", "pf-detach", "pf-delete", "pf-state"):
        assert step.pf is not None
        pf = model.pfs[step.pf]
        if step.op == "pf-attach":
            host = _host_of(model, step.vm)
            return None if host is None or not pf.enabled else (host, PF_APPLY)
        host = _host_of(model, pf.vm)
        if host is None:
            return None
        if step.op == "pf-state":
            if step.enable == pf.enabled:
                return None  # no change
            return (host, PF_APPLY) if step.enable else (host, PF_DELETE)
        return (host, PF_DELETE) if pf.enabled else None
    return None


def users_of(model: CloudModel, vip: int) -> list[User]:
    eips: list[User] = [("eip", e.index) for e in model.eips if e.vip == vip and not e.gone]
    return eips + [("pf", p.index) for p in model.pfs if p.vip == vip and not p.gone]


def user_reach(model: CloudModel, user: User) -> Reach | None:
    """The command taking ``user`` off its host when its VIP goes."""
    kind, index = user
    if kind == "eip":
        host = _host_of(model, model.eips[index].vm)
        return None if host is None else (host, EIP_DELETE)
    pf = model.pfs[index]
    host = _host_of(model, pf.vm)
    return None if host is None or not pf.enabled else (host, PF_DELETE)


def refused(model: CloudModel, reach: Reach | None) -> bool:
    return reach is not None and model.faults.get(reach) == "agent-error"


def expect_pf(model: CloudModel, step: Step) -> tuple[bool, frozenset[str] | None]:
    """(done?, the codes a refusal may carry) for a PF_OPS step."""
    if step.op == "pf-create":
        assert step.vip is not None
        vip = model.vips[step.vip]
        if vip.gone:
            return False, NOT_FOUND
        if any(e.vip == vip.index and not e.gone for e in model.eips) or any(
            b.vip == vip.index and not b.gone for b in model.lbs
        ):
            return False, VIP_IN_USE
        if any(p.vip == vip.index and p.port == step.port and not p.gone for p in model.pfs):
            return False, PORT_IN_USE
        return True, None
    assert step.pf is not None
    pf = model.pfs[step.pf]
    if pf.gone:
        return False, NOT_FOUND
    codes: set[str] = set()
    if step.op == "pf-attach":
        assert step.vm is not None
        # Several reasons may hold at once; the node may name any of them.
        if model.vms[step.vm].state == EXPUNGED:  # its NIC went with it
            codes |= NOT_FOUND
        if pf.vm is not None:
            codes |= PF_ATTACHED
    elif step.op == "pf-detach" and pf.vm is None:
        codes |= PF_NOT_ATTACHED
    if codes:
        return False, frozenset(codes)
    if refused(model, reaches(model, step)):
        return False, AGENT_FAILED
    return True, None


def apply_pf(model: CloudModel, step: Step, uuid: str | None) -> None:
    """The effect of a PF_OPS step the node did."""
    if step.op == "pf-create":
        assert uuid is not None
        assert step.vip is not None
        assert step.port is not None
        model.pfs.append(PfModel(len(model.pfs), uuid, step.vip, step.port, pf_name(model, step)))
        return
    assert step.pf is not None
    pf = model.pfs[step.pf]
    if step.op == "pf-attach":
        pf.vm = step.vm
    elif step.op == "pf-detach":
        pf.vm = None
    elif step.op == "pf-delete":
        pf.vm, pf.gone = None, True
    elif step.op == "pf-update":
        pf.name = pf_name(model, step)
    elif step.op == "pf-state":
        assert step.enable is not None
        pf.enabled = step.enable


def expect_vip_delete(model: CloudModel, vip: int) -> tuple[bool, frozenset[str] | None]:
    """A VIP's delete takes its users off their hosts first: a refusal fails it."""
    reached = {user_reach(model, u) for u in users_of(model, vip)}
    if any(refused(model, r) for r in reached):
        return False, AGENT_FAILED
    return True, None


def apply_vip_delete(model: CloudModel, vip: int, done: bool) -> list[list[User]]:
    """The VIP's delete: every user reached pops the fault waiting on its command. Done:
    the VIP and its users are gone. Refused: the users whose command went to a refusing
    host and path stay, one per (host, path) (the fault fires once; which user met it is
    the order the parallel deletes ran in); answers those groups, for ``settle_users``."""
    users = users_of(model, vip)
    by_reach: dict[Reach, list[User]] = {}
    for user in users:
        reach = user_reach(model, user)
        if reach is not None:
            by_reach.setdefault(reach, []).append(user)
    fired = [r for r in by_reach if refused(model, r)]
    for reach in by_reach:
        model.faults.pop(reach, None)
    staying = {u for r in fired for u in by_reach[r]}
    for user in users:
        if user not in staying:
            _drop(model, user)
    if done:
        model.vips[vip].gone = True
        for lb in model.lbs:  # its load balancers go too (no host is asked)
            if lb.vip == vip and not lb.gone:
                drop_lb(model, lb.index)
    return [by_reach[r] for r in fired]


def settle_users(model: CloudModel, groups: list[list[User]], alive: set[str]) -> str | None:
    """After a refused VIP delete: each group of users that met one refusal keeps exactly
    one (the one the API still lists); the rest went. Answers what breaks that."""
    for group in groups:
        kept = [u for u in group if _uuid(model, u) in alive]
        if len(kept) != 1:
            return f"of {group} (one refusal among them) the API keeps {kept}, not one"
        for user in group:
            if user not in kept:
                _drop(model, user)
    return None


def _uuid(model: CloudModel, user: User) -> str:
    kind, index = user
    return model.eips[index].uuid if kind == "eip" else model.pfs[index].uuid


def _drop(model: CloudModel, user: User) -> None:
    kind, index = user
    row = model.eips[index] if kind == "eip" else model.pfs[index]
    row.gone, row.vm = True, None


def forwards_on(model: CloudModel, host: int) -> dict[str, str]:
    """What host ``host`` must DNAT: "vip:TCP:port-port" -> the NIC's address, for every
    attached, Enabled rule of a VM it runs."""
    out = {}
    for pf in model.pfs:
        if pf.gone or pf.vm is None or not pf.enabled or _host_of(model, pf.vm) != host:
            continue
        key = f"{model.vips[pf.vip].ip}:TCP:{pf.port}-{pf.port}"
        out[key] = model.vms[pf.vm].nic_ip
    return out
