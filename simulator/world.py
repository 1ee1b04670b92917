"""Every simulated machine and NFS share, and the control operations on them.

``World`` knows nothing of HTTP: ``Simulator`` serves it, and tests in the same process
call these methods directly. Machines are keyed by (address label, port) in one dict, so
routing a command is one lookup however many machines there are.
"""

from __future__ import annotations

from typing import Any

import aiohttp

from simulator.agent import SimulatedAgent
from simulator.crash import CrashPlan
from simulator.errors import DeployError, MachineStateError, SimulatorError, UnknownMachineError
from simulator.ledger import EffectLedger
from simulator.machine import (
    AGENT_PORTS,
    APPLIANCE_PORT,
    DEFAULT_BACKUP_STORAGE,
    DEFAULT_CPU_NUM,
    DEFAULT_CPU_OVERPROVISIONING,
    DEFAULT_CPU_SOCKETS,
    DEFAULT_CPU_SPEED,
    DEFAULT_INTERFACES,
    DEFAULT_LOCAL_STORAGE,
    DEFAULT_MEMORY,
    KVM_PORT,
    Fault,
    Machine,
)
from simulator.nfs import DEFAULT_NFS_CAPACITY, NfsShare


class World:
    """The simulated machines and shares. ``http`` is the session every agent posts its
    results and reports on; ``Simulator.start`` sets it, and deployment needs it."""

    def __init__(self) -> None:
        self.machines: dict[tuple[str, int], Machine] = {}
        self.nfs_shares: dict[str, NfsShare] = {}
        self.http: aiohttp.ClientSession | None = None
        self.ledger = EffectLedger()
        self.crashes = CrashPlan(self)
        # Appliance agents by their VM's uuid: a VM stopped or destroyed takes its down.
        self.appliances: dict[str, Machine] = {}

    # ----- machines ---------------------------------------------------------------------

    def declare(
        self,
        address: str,
        port: int = KVM_PORT,
        *,
        username: str = "root",
        password: str | None = None,
        cpu_num: int = DEFAULT_CPU_NUM,
        cpu_speed: int = DEFAULT_CPU_SPEED,
        cpu_sockets: int = DEFAULT_CPU_SOCKETS,
        memory_size: int = DEFAULT_MEMORY,
        cpu_overprovisioning: float = DEFAULT_CPU_OVERPROVISIONING,
        local_storage_capacity: int = DEFAULT_LOCAL_STORAGE,
        storage_capacity: int = DEFAULT_BACKUP_STORAGE,
        physical_interfaces: tuple[str, ...] = DEFAULT_INTERFACES,
    ) -> Machine:
        """Declare (or re-declare: hardware and credentials replaced, state kept) a machine.

        Raises SimulatorError for an empty address, a port other than 7070/7171, or
        non-positive sizes.
        """
        _check_address(address, port)
        if min(cpu_num, cpu_speed, cpu_sockets, memory_size) <= 0 or cpu_overprovisioning <= 0:
            raise SimulatorError("cpu and memory sizes must be positive")
        if min(local_storage_capacity, storage_capacity) < 0:
            raise SimulatorError("storage capacities must not be negative")
        machine = self.machines.get((address, port))
        if machine is None:
            machine = Machine(address, port, self)
            self.machines[(address, port)] = machine
        machine.username, machine.password = username, password
        machine.cpu_num, machine.cpu_speed, machine.cpu_sockets = cpu_num, cpu_speed, cpu_sockets
        machine.memory_size, machine.cpu_overprovisioning = memory_size, cpu_overprovisioning
        machine.local_storage_capacity = local_storage_capacity
        machine.storage_capacity = storage_capacity
        # Interned: 10,000 machines declared alike share one tuple.
        machine.physical_interfaces = (
            DEFAULT_INTERFACES
            if tuple(physical_interfaces) == DEFAULT_INTERFACES
            else tuple(physical_interfaces)
        )
        return machine

    def find(self, address: str, port: int = KVM_PORT) -> Machine | None:
        return self.machines.get((address, port))

    def machine(self, address: str, port: int = KVM_PORT) -> Machine:
        """The machine at (address, port); raises UnknownMachineError."""
        machine = self.machines.get((address, port))
        if machine is None:
            raise UnknownMachineError(f"no simulated machine at {address}:{port}")
        return machine

    def deploy(
        self,
        address: str,
        port: int = KVM_PORT,
        *,
        token: str,
        username: str = "root",
        password: str | None = None,
        ssh_port: int = 22,
        owner_uuid: str | None = None,
    ) -> Machine:
        """Stand-in for SSH + Ansible: check credentials, install ``token``, run the agent.

        An undeclared machine is declared with the defaults. Re-deploying replaces the
        token and keeps the rest. Raises DeployError (bad credentials, dead machine, empty
        token), SimulatorError (bad address or port), MachineStateError (not started).
        On the appliance port it is the appliance's boot: ``owner_uuid`` names its VM.
        """
        _check_address(address, port)
        if self.http is None:
            raise MachineStateError("the simulator is not started")
        machine = self.machines.get((address, port)) or self.declare(address, port)
        if port == APPLIANCE_PORT:
            # An appliance's agent comes with its VM's boot: alive again, configured anew.
            machine.alive = True
            machine.appliance = None
            machine.username = username
            if owner_uuid is not None:
                self.appliances[owner_uuid] = machine
        where = f"{username}@{address}:{ssh_port}"
        if not machine.alive:  # SSH cannot even connect, so credentials are not checked
            raise DeployError(f"{address}:{ssh_port} is unreachable")
        if username != machine.username or (
            machine.password is not None and password != machine.password
        ):
            raise DeployError(f"authentication failed for {where}")
        if not token:
            raise DeployError("the agent token must not be empty")
        if machine.agent is None:
            machine.agent = SimulatedAgent(machine, self.http)
        machine.agent.install_token(token)
        return machine

    def set_fault(
        self,
        address: str,
        path: str,
        *,
        port: int = KVM_PORT,
        fail: str | None = None,
        delay: float = 0.0,
        drop_callback: bool = False,
        times: int | None = None,
    ) -> Fault:
        """Make ``path`` misbehave on that machine (replacing its earlier fault)."""
        machine = self.machine(address, port)
        if not path.startswith("/"):
            raise SimulatorError(f"a fault path starts with '/': {path!r}")
        if delay < 0 or (times is not None and times < 1):
            raise SimulatorError("a fault needs delay >= 0 and times >= 1 (or null)")
        fault = Fault(fail=fail, delay=delay, drop_callback=drop_callback, times=times)
        machine.set_fault(path, fault)
        return fault

    def clear_faults(self, address: str, port: int = KVM_PORT) -> None:
        self.machine(address, port).faults = None

    async def set_alive(self, address: str, alive: bool, port: int = KVM_PORT) -> Machine:
        """Kill or revive a machine. A dead one drops every connection and its running
        commands are cancelled (their results never come); its state is kept, and reviving
        it does not redeploy: the same token works again."""
        machine = self.machine(address, port)
        machine.alive = alive
        if not alive and machine.agent is not None:
            await machine.agent.cancel_running()
        return machine

    def vm_gone(self, vm_uuid: str) -> None:
        """A VM stopped or destroyed on its host: the appliance agent it ran dies with it
        (its configuration goes: a boot starts it empty)."""
        machine = self.appliances.pop(vm_uuid, None)
        if machine is not None:
            machine.alive = False
            machine.appliance = None

    async def report(
        self, address: str, commandpath: str, body: dict[str, Any], port: int = KVM_PORT
    ) -> None:
        """Make the machine's agent POST a report to the node. Raises MachineStateError
        when it is dead, undeployed or never got a ``sendCommandUrl``; ReportError when
        the node does not take it."""
        machine = self.machine(address, port)
        agent = machine.agent
        if agent is None or not machine.reachable:
            raise MachineStateError(f"{address}:{port} is not deployed or is dead")
        if agent.send_command_url is None:
            raise MachineStateError(f"{address}:{port} has no sendCommandUrl: never connected")
        await agent.report(commandpath, body)

    # ----- NFS shares -------------------------------------------------------------------

    def declare_nfs(self, url: str, capacity: int = DEFAULT_NFS_CAPACITY) -> NfsShare:
        """Declare a share (or resize it, keeping its files)."""
        if not url or capacity < 0:
            raise SimulatorError("an NFS share needs a url and a capacity >= 0")
        share = self.nfs_share(url)
        share.capacity = capacity
        return share

    def nfs_share(self, url: str) -> NfsShare:
        """The share at ``url``; mounting an undeclared one makes it with 10 TiB."""
        share = self.nfs_shares.get(url)
        if share is None:
            share = self.nfs_shares[url] = NfsShare(url)
        return share

    async def stop_agents(self) -> None:
        """Cancel every machine's running commands (the simulator is stopping)."""
        await self.crashes.stop()
        for machine in self.machines.values():
            if machine.agent is not None:
                await machine.agent.stop()


def _check_address(address: str, port: int) -> None:
    if not address or "/" in address:
        raise SimulatorError(f"bad machine address {address!r}")
    if port not in AGENT_PORTS:
        raise SimulatorError(f"port must be one of {AGENT_PORTS}, not {port}")
