"""libvirt lifecycle events reported to the node as VM state changes.

libvirt delivers events on its own event loop, which runs here in a daemon thread (it
must be registered before any connection is opened). The callback only hands each event
to the agent's asyncio loop; an asyncio task reports them, in order, as
``/kvm/reportvmstate`` (``hostUuid``, ``vmUuid``, ``vmState``). A report the node cannot
take is logged and dropped: the node's VM sync on ping corrects the database anyway.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import threading
from collections.abc import Callable

import libvirt

from agents.kvm.host_commands import HostState
from agents.runtime import AgentRuntime, ReportError

log = logging.getLogger(__name__)

REPORT_VM_STATE = "/kvm/reportvmstate"
_VM_NAME = re.compile(r"^[0-9a-f]{32}$")
# Lifecycle events that change what the node shows; defines, undefines and the like
# (the agent's own bookkeeping around starts and stops) say nothing new.
EVENT_STATES = {
    libvirt.VIR_DOMAIN_EVENT_STARTED: "Running",
    libvirt.VIR_DOMAIN_EVENT_RESUMED: "Running",
    libvirt.VIR_DOMAIN_EVENT_SUSPENDED: "Paused",
    libvirt.VIR_DOMAIN_EVENT_STOPPED: "Shutdown",
    libvirt.VIR_DOMAIN_EVENT_SHUTDOWN: "Shutdown",
    libvirt.VIR_DOMAIN_EVENT_CRASHED: "Crashed",
}

_loop_started = False
_loop_lock = threading.Lock()


def start_libvirt_event_loop() -> None:
    """Register libvirt's default event implementation and run it in a daemon thread.
    Once per process; before the first ``libvirt.open``."""
    global _loop_started
    with _loop_lock:
        if _loop_started:
            return
        libvirt.virEventRegisterDefaultImpl()
        thread = threading.Thread(target=_run_forever, name="libvirt-events", daemon=True)
        thread.start()
        _loop_started = True


def _run_forever() -> None:
    while True:
        libvirt.virEventRunDefaultImpl()


class VmStateReporter:
    """``subscribe`` is a ``Hypervisor.on_open`` hook (it runs in a libvirt worker);
    ``run`` is the asyncio side, owned by the agent's task group."""

    def __init__(self, runtime: AgentRuntime, state: HostState) -> None:
        self.runtime, self.state = runtime, state
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queue: asyncio.Queue[tuple[str, str]] = asyncio.Queue()

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    def subscribe(self, conn: libvirt.virConnect) -> None:
        conn.domainEventRegisterAny(
            None, libvirt.VIR_DOMAIN_EVENT_ID_LIFECYCLE, self._on_event, None
        )

    def _on_event(
        self, conn: object, dom: libvirt.virDomain, event: int, detail: int, opaque: object
    ) -> None:
        # On libvirt's event thread: hand over to the asyncio loop, do nothing else here.
        state = EVENT_STATES.get(event)
        name = dom.name()
        if state is None or not _VM_NAME.match(name) or self._loop is None:
            return
        put: Callable[[tuple[str, str]], None] = self._queue.put_nowait
        with contextlib.suppress(RuntimeError):  # the loop closed: the agent is stopping
            self._loop.call_soon_threadsafe(put, (name, state))

    async def run(self) -> None:
        while True:
            vm_uuid, state = await self._queue.get()
            body = {"hostUuid": self.state.host_uuid, "vmUuid": vm_uuid, "vmState": state}
            try:
                await self.runtime.report(REPORT_VM_STATE, body)
            except ReportError as exc:
                log.warning("vm %s is %s, but the node was not told: %s", vm_uuid, state, exc)
