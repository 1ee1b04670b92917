"""The VM state machine: which operation each state allows, and the transitional state a
VM shows while the operation runs.

Every check and change runs inside the VM's work queue (``vm:<uuid>``), so the state read
is the state the operation acts on: an operation the state does not allow is refused with
VM.1001 naming the state, never raced.
"""

from __future__ import annotations

from enum import StrEnum

from zstackpy.core.errors import ZError
from zstackpy.core.workqueue import QueueKey
from zstackpy.services.vm.messages import VmErr, VmState

VM_QUEUE = "vm"


def vm_queue(vm_uuid: str) -> QueueKey:
    """The queue every change of one VM runs in."""
    return QueueKey(VM_QUEUE, vm_uuid)


class VmOp(StrEnum):
    START = "start"
    STOP = "stop"
    REBOOT = "reboot"
    PAUSE = "pause"
    RESUME = "resume"
    MIGRATE = "migrate"
    DESTROY = "destroy"
    RECOVER = "recover"
    EXPUNGE = "expunge"
    CHANGE_SIZE = "change CPU or memory of"
    ATTACH_VOLUME = "attach a volume to"
    DETACH_VOLUME = "detach a volume from"
    UPDATE = "update"


S = VmState
# Crashed and NoState: the host still defines the guest; a stop or destroy clears it.
_FAULTY_ON_HOST = frozenset({S.CRASHED, S.NO_STATE})
_STABLE_ALIVE = frozenset({S.RUNNING, S.STOPPED, S.PAUSED, S.UNKNOWN, S.ERROR}) | _FAULTY_ON_HOST

ALLOWED: dict[VmOp, frozenset[VmState]] = {
    VmOp.START: frozenset({S.STOPPED}),
    # Unknown: the host did not say; a stop that reaches it settles the question.
    VmOp.STOP: frozenset({S.RUNNING, S.PAUSED, S.UNKNOWN}) | _FAULTY_ON_HOST,
    VmOp.REBOOT: frozenset({S.RUNNING}),
    VmOp.PAUSE: frozenset({S.RUNNING}),
    VmOp.RESUME: frozenset({S.PAUSED}),
    VmOp.MIGRATE: frozenset({S.RUNNING}),
    VmOp.DESTROY: _STABLE_ALIVE,
    VmOp.RECOVER: frozenset({S.DESTROYED}),
    VmOp.EXPUNGE: frozenset({S.DESTROYED}),
    VmOp.CHANGE_SIZE: frozenset({S.STOPPED}),
    VmOp.ATTACH_VOLUME: frozenset({S.RUNNING, S.STOPPED, S.PAUSED}),
    VmOp.DETACH_VOLUME: frozenset({S.RUNNING, S.STOPPED, S.PAUSED, S.DESTROYED}),
    VmOp.UPDATE: _STABLE_ALIVE | {S.DESTROYED},
}

# What the VM shows while the operation runs (stored, so queries and the event stream see
# it); the operation ends in a stable state whatever happens.
TRANSITIONAL: dict[VmOp, VmState] = {
    VmOp.START: S.STARTING,
    VmOp.STOP: S.STOPPING,
    VmOp.REBOOT: S.REBOOTING,
    VmOp.PAUSE: S.PAUSING,
    VmOp.RESUME: S.RESUMING,
    VmOp.MIGRATE: S.MIGRATING,
    VmOp.DESTROY: S.DESTROYING,
    VmOp.EXPUNGE: S.EXPUNGING,
}

# States in which a VM holds CPU and memory on its host (host_uuid set).
ON_HOST = frozenset({S.STARTING, S.RUNNING, S.STOPPING, S.REBOOTING, S.PAUSING, S.PAUSED})
ON_HOST |= {S.RESUMING, S.MIGRATING, S.UNKNOWN} | _FAULTY_ON_HOST


def require_state(vm_uuid: str, state: str, op: VmOp) -> VmState:
    """The VM's state if ``op`` is allowed in it; VM.1001 naming the state otherwise."""
    current = VmState(state)
    allowed = ALLOWED[op]
    if current not in allowed:
        raise ZError(
            VmErr.WRONG_STATE,
            f"cannot {op.value} VM {vm_uuid}: it is {current.value}, and {op.value} needs it "
            f"{' or '.join(sorted(s.value for s in allowed))}",
            uuid=vm_uuid,
            state=current.value,
            operation=op.name,
            allowedStates=sorted(s.value for s in allowed),
        )
    return current
