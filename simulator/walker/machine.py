"""Hypothesis' state machine picks the walk's actions and shrinks a failing walk.

Hypothesis runs synchronously; the node runs on an asyncio loop. The machine therefore
runs in a worker thread (``asyncio.to_thread``) and hands each step to the loop with
``run_coroutine_threadsafe`` (``Session``). One node serves every example of a run: the
session empties the cloud before each, so an example starts where a fresh node would.

Rules draw plain numbers; the session turns them into walk indexes against the model at
that moment (a VM number modulo the VMs made so far), so every drawn step is well
formed, and invalid actions (a VM in the wrong state, expunged, a host without room) are
drawn as often as valid ones: the model predicts their refusal.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, precondition, rule

from simulator.walker.actionlog import LogWriter
from simulator.walker.actions import do
from simulator.walker.cloud import Cloud, WalkError
from simulator.walker.invariants import CHECKS, check
from simulator.walker.model import DOWN_OPS, CloudModel
from simulator.walker.steps import (
    CONCURRENT_OPS,
    EIP_OPS,
    FAULT_PATHS,
    IMAGE_OPS,
    LB_OPS,
    LB_PORTS,
    NETWORK_PATHS,
    PF_OPS,
    PF_PORTS,
    ROUTER_PATHS,
    SG_OPS,
    SG_PORTS,
    SNAPSHOT_OPS,
    VM_OPS,
    VOLUME_OPS,
    Step,
)

T = TypeVar("T")
# The fault kinds by weight: agent errors are cheap, a host outage costs a second or two.
FAULT_WEIGHTS = ("agent-error", "agent-error", "lost-callback", "host-outage", "agent-error")
STEP_TIMEOUT_S = 120.0


@dataclass
class Stats:
    steps: int = 0
    checks: int = 0
    examples: int = 0
    failures: list[tuple[list[Step], str]] = field(default_factory=list)


class Session:
    """The bridge between the machine (a worker thread) and the cloud (the loop)."""

    def __init__(
        self,
        cloud: Cloud,
        loop: asyncio.AbstractEventLoop,
        log: LogWriter,
        shrink_seconds: float = 60.0,
    ) -> None:
        self.cloud = cloud
        self.shrink_seconds = shrink_seconds
        self.first_failure_at: float | None = None
        self.loop = loop
        self.log = log
        self.stats = Stats()
        self.current: list[Step] = []
        self.failed = False  # the running example failed
        self.dirty = False  # emptying the cloud left something behind: a fresh node next

    @property
    def model(self) -> CloudModel:
        assert self.cloud.model is not None
        return self.cloud.model

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(STEP_TIMEOUT_S)

    @property
    def out_of_time(self) -> bool:
        """Shrinking has had its time: Hypothesis' own bound is minutes of examples, each
        a real walk here. From then on examples run nothing (and pass), so Hypothesis ends
        at once; the last failure recorded is the smallest it found."""
        return (
            self.first_failure_at is not None
            and time.monotonic() - self.first_failure_at > self.shrink_seconds
        )

    def begin(self) -> None:
        """Before an example: the cloud is empty (``end`` emptied it), or, when emptying
        it left something behind, a fresh node takes over: a polluted node would make
        every later example fail, and shrinking would learn nothing."""
        if self.out_of_time:
            return
        if self.dirty:
            self._run(self.cloud.restart())
            self.dirty = False
        self.log.begin()
        self.stats.examples += 1
        self.current = []
        self.failed = False

    def end(self) -> None:
        """After an example: empty the cloud and check it is back to its baseline (a
        capacity, an address or a guest an operation leaked shows here). A failure here
        is the example's, unless one of its steps failed already."""
        if self.out_of_time:
            return
        try:
            self._run(self.cloud.reset())
            problems = self._run(check(self.cloud))
        except Exception as exc:
            problems = [f"emptying the cloud: {type(exc).__name__}: {exc}"]
        if not problems:
            return
        self.dirty = True
        if self.failed:
            return
        text = "after the walk, with every VM expunged: " + "; ".join(problems)
        self.log.failure(text)
        self.stats.failures.append((list(self.current), text))
        if self.first_failure_at is None:
            self.first_failure_at = time.monotonic()
        raise WalkError(text)

    def step(self, step: Step) -> None:
        """Do one step and check every invariant; WalkError (logged) when one breaks."""
        if self.out_of_time:
            return
        self.log.step(step)
        self.current.append(step)
        self.stats.steps += 1
        try:
            self._run(do(self.cloud, step))
            problems = self._run(check(self.cloud))
            self.stats.checks += len(CHECKS)
        except WalkError as exc:
            problems = [str(exc)]
        except Exception as exc:  # a step that broke the walker itself still ends the walk
            problems = [f"{step}: {type(exc).__name__}: {exc}"]
        if problems:
            self.failed = True
            text = "; ".join(problems)
            self.log.failure(text)
            self.stats.failures.append((list(self.current), text))
            if self.first_failure_at is None:
                self.first_failure_at = time.monotonic()
            raise WalkError(text)


class WalkMachine(RuleBasedStateMachine):
    """The walk's rules. ``session`` is set by the runner before Hypothesis runs."""

    session: ClassVar[Session | None] = None

    def __init__(self) -> None:
        super().__init__()
        assert WalkMachine.session is not None, "the runner sets WalkMachine.session"
        self.s = WalkMachine.session
        self.s.begin()

    def teardown(self) -> None:
        self.s.end()

    @property
    def model(self) -> CloudModel:
        return self.s.model

    def _has_vms(self) -> bool:
        return bool(self.model.vms)

    def _has_live_vms(self) -> bool:
        return bool(self.model.live_vms())

    def _may_fault(self) -> bool:
        return bool(self.s.cloud.config.faults)

    @rule(host=st.integers(0, 7), weight=st.integers(0, 3))
    def create(self, host: int, weight: int) -> None:
        # Creates come in a quarter of the draws: often enough to reach the hosts' and
        # the L3's limits, rarely enough to leave room for the VMs' lives.
        if weight == 0 or not self.model.live_vms():
            self.s.step(Step("create", host=self.pick_host("create", host)))
        else:
            self.operate_on(VM_OPS[host % len(VM_OPS)], weight, host)

    @precondition(_has_vms)
    @rule(op=st.sampled_from(VM_OPS), vm=st.integers(0, 63), host=st.integers(0, 7))
    def operate(self, op: str, vm: int, host: int) -> None:
        self.operate_on(op, vm, host)

    def operate_on(self, op: str, vm: int, host: int) -> None:
        target = self.pick_host(op, host) if op in ("start", "migrate") else None
        self.s.step(Step(op, vm=vm % len(self.model.vms), host=target))

    def pick_host(self, op: str, draw: int) -> int | None:
        """A host by number, or (one draw in n+1) none: the node's allocator chooses."""
        n = len(self.model.hosts)
        if draw % (n + 1) == n and self.model.may_allocate(op):
            return None
        return draw % n

    @precondition(_has_live_vms)
    @rule(
        ops=st.lists(st.sampled_from(CONCURRENT_OPS), min_size=2, max_size=3),
        vm=st.integers(0, 63),
    )
    def concurrent(self, ops: list[str], vm: int) -> None:
        live = self.model.live_vms()
        self.s.step(Step("concurrent", vm=live[vm % len(live)].index, ops=tuple(ops)))

    @rule(op=st.sampled_from(VOLUME_OPS), volume=st.integers(0, 63), vm=st.integers(0, 63))
    def volume(self, op: str, volume: int, vm: int) -> None:
        volumes, vms = self.model.volumes, self.model.vms
        if not volumes or (op == "volume-attach" and not vms):
            op = "volume-create"
        if op == "volume-create":
            self.s.step(Step(op))
            return
        target = vm % len(vms) if op == "volume-attach" else None
        self.s.step(Step(op, volume=volume % len(volumes), vm=target))

    def _has_volumes(self) -> bool:
        return self._walks("snapshots") and bool(self.model.vms or self.model.volumes)

    def _walks(self, resource: str) -> bool:
        return resource in self.s.cloud.config.resources

    def _walks_images(self) -> bool:
        return self._walks("images")

    def _walks_groups(self) -> bool:
        return self._walks("security-groups")

    def _walks_eips(self) -> bool:
        return self._walks("eips")

    def _walks_forwards(self) -> bool:
        return self._walks("port-forwarding")

    def _walks_balancers(self) -> bool:
        return self._walks("load-balancers")

    @precondition(_has_volumes)
    @rule(op=st.sampled_from(SNAPSHOT_OPS), on=st.integers(0, 63), snap=st.integers(0, 63))
    def snapshot(self, op: str, on: int, snap: int) -> None:
        snapshots = self.model.snapshots
        if not snapshots:
            op = "snapshot-create"
        if op != "snapshot-create":
            # deleted snapshots too: their revert and delete must be refused
            self.s.step(Step(op, snapshot=snap % len(snapshots)))
            return
        # The root volumes of the walk's VMs and its data volumes, by one number (expunged
        # VMs, deleted and never instantiated volumes too: those must be refused).
        vms = len(self.model.vms)
        which = on % (vms + len(self.model.volumes))
        if which < vms:
            self.s.step(Step(op, vm=which))
        else:
            self.s.step(Step(op, volume=which - vms))

    @precondition(_walks_images)
    @rule(op=st.sampled_from(IMAGE_OPS), image=st.integers(0, 63), bad=st.integers(0, 4))
    def image(self, op: str, image: int, bad: int) -> None:
        if op == "image-add":
            self.s.step(Step(op, bad=bad == 0))  # one add in five from a bad URL
            return
        which = image % len(self.model.images)
        if which == 0 and op == "image-expunge":
            # The image every VM boots from is deleted and recovered, never expunged: the
            # walk would make no VM again (a Deleted one shows creates being refused).
            op = "image-recover"
        self.s.step(Step(op, image=which))

    @precondition(_walks_groups)
    @rule(
        op=st.sampled_from(SG_OPS),
        group=st.integers(0, 63),
        vm=st.integers(0, 63),
        port=st.sampled_from(SG_PORTS),
    )
    def security_group(self, op: str, group: int, vm: int, port: int) -> None:
        model = self.model
        if not model.groups or (op in ("sg-join", "sg-leave") and not model.vms):
            op = "sg-create"
        if op == "sg-rule-delete" and not model.rules:
            op = "sg-rule-add"
        if op == "sg-create":
            self.s.step(Step(op))
        elif op == "sg-rule-delete":
            self.s.step(Step(op, rule=group % len(model.rules)))
        else:
            # deleted groups and expunged VMs too: those must be refused
            g = group % len(model.groups)
            if op == "sg-rule-add":
                self.s.step(Step(op, group=g, port=port))
            elif op == "sg-delete":
                self.s.step(Step(op, group=g))
            else:
                self.s.step(Step(op, group=g, vm=vm % len(model.vms)))

    @precondition(_walks_eips)
    @rule(op=st.sampled_from(EIP_OPS), which=st.integers(0, 63), vm=st.integers(0, 63))
    def eip(self, op: str, which: int, vm: int) -> None:
        model = self.model
        if op in ("vip-delete", "eip-create") and not model.vips:
            op = "vip-create"
        if op.startswith("eip-") and op != "eip-create" and not model.eips:
            op = "eip-create" if model.vips else "vip-create"
        if op == "eip-attach" and not model.vms:
            op = "eip-detach"
        # deleted VIPs and EIPs and expunged VMs too: those must be refused
        if op == "vip-create":
            self.s.step(Step(op))
        elif op in ("vip-delete", "eip-create"):
            self.s.step(Step(op, vip=which % len(model.vips)))
        elif op == "eip-attach":
            self.s.step(Step(op, eip=which % len(model.eips), vm=vm % len(model.vms)))
        else:
            self.s.step(Step(op, eip=which % len(model.eips)))

    @precondition(_walks_forwards)
    @rule(
        op=st.sampled_from(PF_OPS),
        which=st.integers(0, 63),
        vm=st.integers(0, 63),
        port=st.sampled_from(PF_PORTS),
    )
    def port_forwarding(self, op: str, which: int, vm: int, port: int) -> None:
        model = self.model
        if not model.vips:
            self.s.step(Step("vip-create"))  # rules need a VIP
            return
        if op != "pf-create" and not model.pfs:
            op = "pf-create"
        if op == "pf-attach" and not model.vms:
            self.s.step(Step("create", host=self.pick_host("create", vm)))  # a NIC first
            return
        # deleted VIPs and rules and expunged VMs too: those must be refused
        if op == "pf-create":
            self.s.step(Step(op, vip=which % len(model.vips), port=port))
        elif op == "pf-attach":
            self.s.step(Step(op, pf=which % len(model.pfs), vm=vm % len(model.vms)))
        elif op == "pf-state":
            # a change or a repeat of the state it has, by one bit of the draw
            self.s.step(Step(op, pf=which % len(model.pfs), enable=vm % 2 == 0))
        else:
            self.s.step(Step(op, pf=which % len(model.pfs)))

    @precondition(_walks_balancers)
    @rule(
        op=st.sampled_from(LB_OPS),
        which=st.integers(0, 63),
        vm=st.integers(0, 63),
        port=st.sampled_from(LB_PORTS),
    )
    def load_balancer(self, op: str, which: int, vm: int, port: int) -> None:
        model = self.model
        if not model.vips:
            self.s.step(Step("vip-create"))  # load balancers need a VIP
            return
        if op != "lb-create" and not model.lbs:
            op = "lb-create"
        if op in ("listener-delete", "lb-add", "lb-remove") and not model.listeners:
            op = "listener-create"
        if op in ("lb-add", "lb-remove") and not model.vms:
            self.s.step(Step("create", host=self.pick_host("create", vm)))  # backends first
            return
        # deleted VIPs, load balancers and listeners and expunged VMs too: refused
        if op == "lb-create":
            vip = which % len(model.vips)
            free = [v.index for v in model.live_vips() if not model.vip_used(v.index)]
            if not any(not b.gone for b in model.lbs):
                # EIPs and rules take the few VIPs: with no load balancer yet, one on a
                # free VIP (or a new VIP first), so the walk reaches listeners
                if not free and len(model.live_vips()) < model.public_ip_capacity:
                    self.s.step(Step("vip-create"))
                    return
                vip = free[which % len(free)] if free else vip
            self.s.step(Step(op, vip=vip))
        elif op == "lb-delete":
            self.s.step(Step(op, lb=which % len(model.lbs)))
        elif op == "listener-create":
            self.s.step(Step(op, lb=which % len(model.lbs), port=port))
        elif op == "listener-delete":
            self.s.step(Step(op, listener=which % len(model.listeners)))
        else:
            listener = which % len(model.listeners)
            self.s.step(Step(op, listener=listener, vm=vm % len(model.vms)))

    @precondition(_may_fault)
    @rule(
        kind=st.sampled_from(FAULT_WEIGHTS),
        host=st.integers(0, 7),
        path=st.sampled_from(FAULT_PATHS + NETWORK_PATHS + ROUTER_PATHS),
        lose=st.integers(0, 63) | st.none(),
        during=st.lists(st.sampled_from(DOWN_OPS), max_size=2),
    )
    def fault(self, kind: str, host: int, path: str, lose: int | None, during: list[str]) -> None:
        kinds = self.s.cloud.config.faults
        if kind not in kinds:
            kind = kinds[0]
        h = host % len(self.model.hosts)
        if path in ROUTER_PATHS:
            # the router's agent refuses its next load-balancer command (agent errors only:
            # a lost callback is the host agents')
            if self.s.cloud.router_ip is not None and kind == "agent-error":
                self.s.step(Step("router-error", path=path))
            return
        if kind != "host-outage":
            self.s.step(Step(kind, host=h, path=path))
            return
        on_host = [vm.index for vm in self.model.vms if vm.host == h]
        lose_vm = on_host[lose % len(on_host)] if on_host and lose is not None else None
        # While it is down, a few operations go to one of its VMs (the last one it runs).
        target = on_host[-1] if on_host and during else None
        ops = tuple(during) if target is not None else ()
        self.s.step(Step(kind, host=h, lose_vm=lose_vm, vm=target, ops=ops))
