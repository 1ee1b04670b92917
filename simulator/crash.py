"""Agents that die after acting and before calling back, then come back.

``CrashPlan.arm(address, path, down_for, times)``: the next ``times`` runs of ``path`` on
that machine change the machine as usual, then the machine dies before the result is
posted (the callback is never sent), stays dead ``down_for`` seconds and comes back with a
restarted agent: its task cache is gone, only the journal (``simulator.ledger``) remembers
what ran. A node that resends the task id gets the recorded result; one that sends the
operation again under a new id meets a machine that already did it.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from agents.runtime import drop_callback
from simulator.errors import SimulatorError

if TYPE_CHECKING:
    from simulator.machine import Machine
    from simulator.world import World

log = logging.getLogger(__name__)


@dataclass(slots=True)
class _Crash:
    down_for: float
    times: int


class CrashPlan:
    def __init__(self, world: World) -> None:
        self._world = world
        self._armed: dict[tuple[str, int, str], _Crash] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.crashes = 0  # machines crashed so far

    def arm(self, address: str, port: int, path: str, *, down_for: float, times: int) -> None:
        self._world.machine(address, port)  # UnknownMachineError for a machine never declared
        if not path.startswith("/") or down_for < 0 or times < 1:
            raise SimulatorError("a crash needs a path starting with '/', downFor >= 0, times >= 1")
        self._armed[(address, port, path)] = _Crash(down_for, times)

    def after_run(self, machine: Machine, path: str) -> None:
        """Called by the agent after ``path`` changed ``machine``: crash now if armed."""
        key = (machine.address, machine.port, path)
        crash = self._armed.get(key)
        if crash is None:
            return
        crash.times -= 1
        if crash.times <= 0:
            del self._armed[key]
        drop_callback()  # the process dies before the result leaves
        self.crashes += 1
        # After this command returns: dying now would cancel the command that acted.
        task = asyncio.get_running_loop().create_task(self._down(machine, crash.down_for))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def restart(self, address: str, port: int, *, down_for: float = 0.0) -> None:
        """Kill the machine's agent, keep it down ``down_for`` s, start it again."""
        await self._down(self._world.machine(address, port), down_for)

    async def _down(self, machine: Machine, down_for: float) -> None:
        log.info("simulated agent %s:%d crashes for %g s", machine.address, machine.port, down_for)
        await self._world.set_alive(machine.address, False, machine.port)
        if machine.agent is not None:
            machine.agent.forget_tasks()  # a new process: only the journal remembers
        await asyncio.sleep(down_for)
        await self._world.set_alive(machine.address, True, machine.port)

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
