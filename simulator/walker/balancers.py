"""The model's load balancers: each on a VIP of its own, with listeners (one TCP port
each) whose backends are the walk's VMs' NICs; the virtual router of the walk's L3 serves
them (docs/network-services.md, "Load balancers").

What the node documents and the model follows: a load balancer holds its VIP alone
(VIP.1001 for an EIP, a rule or a second load balancer on it); two listeners of one load
balancer never share a port (LB.1001); adding a NIC a listener has, or removing one it
has not, changes nothing; a VM destroyed while it runs (or is paused) leaves every
listener, a stopped VM destroyed keeps its place until it is expunged; a VIP's delete
deletes its load balancers. The router holds, for each load balancer, exactly its
listeners that have backends, each with its backends' addresses.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from simulator.walker.steps import DELETE_LB, REFRESH_LB, ROUTER_PATHS, Step

if TYPE_CHECKING:
    from simulator.walker.model import CloudModel

NOT_FOUND = frozenset({"SYS.1003"})
VIP_IN_USE = frozenset({"VIP.1001"})
PORT_TAKEN = frozenset({"LB.1001"})
EXPUNGED = "Expunged"
AGENT_FAILED = frozenset({"AGENT.1003"})
# The router's place in the model's fault book (keyed by host index and path).
ROUTER = -1
# The steps whose router command the model follows (the others withdraw its errors).
FOLLOWED = ("lb-create", "lb-delete", "listener-create", "listener-delete", "lb-add", "lb-remove")


@dataclass(slots=True)
class LbModel:
    index: int
    uuid: str
    vip: int
    gone: bool = False


@dataclass(slots=True)
class ListenerModel:
    """A listener of load balancer ``lb`` on TCP ``port``; ``backends``: the VMs (walk
    indexes) whose NIC it balances to."""

    index: int
    uuid: str
    lb: int
    port: int
    backends: set[int] = field(default_factory=set)
    gone: bool = False


def expect_lb(model: CloudModel, step: Step) -> tuple[bool, frozenset[str] | None]:
    """(done?, the codes a refusal may carry) for an LB_OPS step."""
    if step.op == "lb-create":
        assert step.vip is not None
        if model.vips[step.vip].gone:
            return False, NOT_FOUND
        return (False, VIP_IN_USE) if model.vip_used(step.vip) else (True, None)
    if step.op in ("lb-delete", "listener-create"):
        assert step.lb is not None
        lb = model.lbs[step.lb]
        if lb.gone:
            return False, NOT_FOUND
        if step.op == "listener-create" and any(
            li.lb == lb.index and li.port == step.port and not li.gone for li in model.listeners
        ):
            return False, PORT_TAKEN
        return refusal(model, step)
    assert step.listener is not None
    listener = model.listeners[step.listener]
    if listener.gone:
        return False, NOT_FOUND
    if step.op == "lb-add":
        assert step.vm is not None
        if model.vms[step.vm].state == EXPUNGED:  # its NIC went with it
            return False, NOT_FOUND
    return refusal(model, step)


def refusal(model: CloudModel, step: Step) -> tuple[bool, frozenset[str] | None]:
    path = router_reach(model, step)
    if path is not None and model.faults.get((ROUTER, path)) == "agent-error":
        return False, AGENT_FAILED  # the router refused: the change is undone
    return True, None


def _has_backends(model: CloudModel, lb: int, listeners: list[ListenerModel]) -> bool:
    return any(li.lb == lb and not li.gone and li.backends for li in listeners)


def router_reach(model: CloudModel, step: Step) -> str | None:
    """The router command a load balancer's change (admitted otherwise) sends: the new
    table while listeners keep backends, the delete when the last backend goes."""
    if step.op == "lb-delete":
        assert step.lb is not None
        return DELETE_LB if _has_backends(model, step.lb, model.listeners) else None
    if step.op not in ("listener-delete", "lb-add", "lb-remove"):
        return None
    assert step.listener is not None
    listener = model.listeners[step.listener]
    lb = listener.lb
    if step.op == "lb-add":
        return None if step.vm in listener.backends else REFRESH_LB
    if step.op == "lb-remove" and step.vm not in listener.backends:
        return None  # nothing changes
    if not _has_backends(model, lb, model.listeners):
        return None
    others = [li for li in model.listeners if li.index != listener.index]
    left = step.op == "lb-remove" and len(listener.backends) > 1
    return REFRESH_LB if left or _has_backends(model, lb, others) else DELETE_LB


def router_withdrawn(model: CloudModel, step: Step) -> list[str]:
    """The router errors that go before ``step``: every one, unless it is a load
    balancer's own change or a fault."""
    if step.op in FOLLOWED or step.op in ("agent-error", "lost-callback", "router-error"):
        return []
    return [p for p in ROUTER_PATHS if (ROUTER, p) in model.faults]


def fired(model: CloudModel, step: Step) -> None:
    """The router command the step sent (done or refused): its fault fired."""
    path = router_reach(model, step)
    if path is not None:
        model.faults.pop((ROUTER, path), None)


def apply_lb(model: CloudModel, step: Step, uuid: str | None) -> None:
    """The effect of an LB_OPS step the node did."""
    if step.op == "lb-create":
        assert uuid is not None
        assert step.vip is not None
        model.lbs.append(LbModel(len(model.lbs), uuid, step.vip))
        return
    if step.op == "listener-create":
        assert uuid is not None
        assert step.lb is not None
        assert step.port is not None
        model.listeners.append(ListenerModel(len(model.listeners), uuid, step.lb, step.port))
        return
    if step.op == "lb-delete":
        assert step.lb is not None
        drop_lb(model, step.lb)
        return
    assert step.listener is not None
    listener = model.listeners[step.listener]
    if step.op == "listener-delete":
        listener.gone, listener.backends = True, set()
    elif step.op == "lb-add":
        assert step.vm is not None
        listener.backends.add(step.vm)
    else:
        assert step.vm is not None
        listener.backends.discard(step.vm)


def drop_lb(model: CloudModel, lb: int) -> None:
    model.lbs[lb].gone = True
    for listener in model.listeners:
        if listener.lb == lb:
            listener.gone, listener.backends = True, set()


def leave_listeners(model: CloudModel, vm: int) -> None:
    """The VM's NIC leaves every listener (destroyed on its host, or expunged)."""
    for listener in model.listeners:
        listener.backends.discard(vm)


def router_table(model: CloudModel) -> dict[str, dict[int, list[str]]]:
    """What the router must hold: load balancer uuid -> listener port -> the backends'
    addresses, for the listeners that have backends."""
    out: dict[str, dict[int, list[str]]] = {}
    for listener in model.listeners:
        if listener.gone or not listener.backends:
            continue
        lb = model.lbs[listener.lb]
        ips = sorted(model.vms[vm].nic_ip for vm in listener.backends)
        out.setdefault(lb.uuid, {})[listener.port] = ips
    return out
