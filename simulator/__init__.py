"""Simulated hosts speaking the agent protocol, many per process: ``Simulator``.

See ``simulator/README.md`` for the routes, the control API and the command set.
"""

from simulator.errors import DeployError, MachineStateError, SimulatorError, UnknownMachineError
from simulator.machine import KVM_PORT, SFTP_PORT, Fault, Machine, Vm
from simulator.nfs import NfsShare
from simulator.simulator import Simulator
from simulator.world import World

__all__ = [
    "KVM_PORT",
    "SFTP_PORT",
    "DeployError",
    "Fault",
    "Machine",
    "MachineStateError",
    "NfsShare",
    "Simulator",
    "SimulatorError",
    "UnknownMachineError",
    "Vm",
    "World",
]
