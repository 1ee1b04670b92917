"""A simulated machine's agent: an ``AgentRuntime`` whose commands act on its ``Machine``.

Every machine on a port shares one command table (path -> plain function of the machine
and the command), so a machine costs no per-command closures. ``lookup`` binds the
machine per request and wraps the function with the machine's faults and counters.
"""

from __future__ import annotations

import asyncio
from functools import partial
from typing import TYPE_CHECKING, Any

import aiohttp

from agents.runtime import AgentCommandError, AgentRuntime, Command, drop_callback
from simulator import appliance, kvm_host, kvm_network, kvm_storage, kvm_vm, sftp
from simulator.commands import SimCommand, SimFn
from simulator.machine import APPLIANCE_PORT, KVM_PORT, SFTP_PORT

if TYPE_CHECKING:
    from simulator.machine import Machine

# Per agent, bounded smaller than a real agent's: 10,000 agents share this process, and a
# resend comes within the node's call timeout (300 s by default) or never.
SIM_CACHE_SIZE = 256
SIM_CACHE_AGE_S = 330.0


class SimulatedAgent(AgentRuntime):
    """The agent of one simulated machine; refuses callback URLs off loopback."""

    __slots__ = ("machine",)

    def __init__(self, machine: Machine, http: aiohttp.ClientSession) -> None:
        super().__init__(
            http=http,
            cache_size=SIM_CACHE_SIZE,
            cache_age=SIM_CACHE_AGE_S,
            loopback_only=True,
            journal=machine.world.ledger,
        )
        self.machine = machine

    def lookup(self, path: str) -> Command | None:
        sim = command_table(self.machine.port).get(path)
        if sim is None:
            return None
        return Command(partial(_run, self.machine, path, sim.fn), sim.sync)


async def _run(machine: Machine, path: str, fn: SimFn, cmd: dict[str, Any]) -> dict[str, Any]:
    machine.count(path)
    fault = machine.take_fault(path)
    if fault is None:
        return _acted(machine, path, cmd, fn(machine, cmd))
    if fault.delay > 0:
        await asyncio.sleep(fault.delay)
    if fault.fail is not None:
        raise AgentCommandError(fault.fail)
    result = _acted(machine, path, cmd, fn(machine, cmd))
    if fault.drop_callback:
        drop_callback()
    return result


def _acted(
    machine: Machine, path: str, cmd: dict[str, Any], result: dict[str, Any]
) -> dict[str, Any]:
    # The chaos harness's ledger and crashes (simulator.ledger, simulator.crash).
    machine.world.ledger.acted(path, cmd)
    machine.world.crashes.after_run(machine, path)
    return result


def command_table(port: int) -> dict[str, SimCommand]:
    """The commands of the agent on ``port`` (7070 KVM host, 7171 SFTP backup storage)."""
    return _TABLES.get(port, {})


_TABLES: dict[int, dict[str, SimCommand]] = {
    KVM_PORT: {
        **kvm_host.COMMANDS,
        **kvm_vm.COMMANDS,
        **kvm_storage.COMMANDS,
        **kvm_network.COMMANDS,
    },
    SFTP_PORT: dict(sftp.COMMANDS),
    APPLIANCE_PORT: dict(appliance.COMMANDS),
}
