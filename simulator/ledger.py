"""What the simulated agents really did, for the chaos harness's "no duplicate effect".

``EffectLedger`` is every simulated agent's task journal (``agents.runtime.TaskJournal``):
it records each command that ran to its end by task id, so a task id that ran twice is a
duplicate the agent protocol should have prevented, and a restarted agent (its task cache
gone: ``simulator.crash``) answers a resent task id with the result it recorded instead of
running it again, as the real KVM agent's journal does. A command cancelled before it ran
(its machine died during a delay fault) is not recorded: nothing happened, a resend runs it.

It also counts, per VM, the commands that changed it (``acted``): the harness compares
those with the operations it asked for, so a node that retries an operation under a new
task id and starts a VM twice is seen.
"""

from __future__ import annotations

import contextvars
from collections import Counter, OrderedDict
from typing import Any

# Reads: running them again changes nothing, and pings alone would fill the ledger.
READ_ONLY = frozenset(
    {
        "/host/ping",
        "/host/echo",
        "/host/capacity",
        "/host/fact",
        "/vm/vmsync",
        "/vm/checkstate",
        "/localstorage/getphysicalcapacity",
        "/nfsprimarystorage/getcapacity",
        "/sftpbackupstorage/ping",
        "/sftpbackupstorage/getcapacity",
    }
)
# Finished results kept for resends after a restart (the real agent's journal is bounded too).
MAX_RESULTS = 200_000
# The task id of the async command running in this context: the runtime awaits ``started``
# in the task that then runs the command, so what ``started`` sets, ``acted`` reads.
_task_uuid: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "simulated_task_uuid", default=None
)
# The VM a command is about: field names as the node sends them.
_VM_FIELDS = ("vmInstanceUuid", "vmUuid", "uuid")
_VM_PATHS = frozenset({"/vm/start", "/vm/stop", "/vm/destroy", "/vm/reboot", "/vm/migrate"})


class EffectLedger:
    __slots__ = ("_results", "_runs", "duplicates", "vm_effects")

    def __init__(self) -> None:
        self._runs: dict[str, int] = {}
        self._results: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self.duplicates: list[tuple[str, str]] = []  # (task uuid, path) that ran again
        self.vm_effects: Counter[tuple[str, str]] = Counter()  # (vm uuid, path) -> runs

    # ----- TaskJournal ------------------------------------------------------------------

    def recall(self, task_uuid: str) -> dict[str, Any] | None:
        return self._results.get(task_uuid)

    async def started(self, task_uuid: str, path: str) -> None:
        # Nothing recorded yet: a command cancelled before it ran did nothing.
        _task_uuid.set(task_uuid)

    async def finished(self, task_uuid: str, result: dict[str, Any]) -> None:
        # The path is not passed here; ``acted`` saw it. Reads are never kept.
        if task_uuid not in self._runs:
            return
        self._results[task_uuid] = result
        while len(self._results) > MAX_RESULTS:
            self._results.popitem(last=False)

    # ----- what the simulated agents tell it --------------------------------------------

    def acted(self, path: str, cmd: dict[str, Any]) -> None:
        """A command ran on a machine (called by the agent right after the change); sync
        commands have no task id and are not recorded."""
        task_uuid = _task_uuid.get()
        if path in READ_ONLY or task_uuid is None:
            return
        runs = self._runs.get(task_uuid, 0) + 1
        self._runs[task_uuid] = runs
        if runs > 1:
            self.duplicates.append((task_uuid, path))
        if path in _VM_PATHS:
            vm = next((cmd[f] for f in _VM_FIELDS if isinstance(cmd.get(f), str)), None)
            if vm is not None:
                self.vm_effects[(vm, path)] += 1

    def view(self) -> dict[str, Any]:
        by_vm: dict[str, dict[str, int]] = {}
        for (vm, path), runs in self.vm_effects.items():
            by_vm.setdefault(vm, {})[path] = runs
        return {
            "tasks": len(self._runs),
            "duplicates": [{"taskUuid": t, "path": p} for t, p in self.duplicates],
            "vmEffects": by_vm,
        }
