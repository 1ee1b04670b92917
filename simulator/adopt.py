"""Machines and VMs whose node-side rows were written in bulk (the stress driver's fast
path, ``simulator.stress.fastpath``): the simulator is put in the state the API path would
have left it in, so the node's pings, state syncs and later commands see what they would
see after AddKVMHost or CreateVmInstance.

A host is adopted *like* a template machine the node deployed and connected through the
API: same hardware, agent version, bridges and NFS mounts, its own token and host uuid.
A VM is adopted Running on its machine, its root volume stored on its NFS share.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

from simulator.commands import store_file
from simulator.errors import SimulatorError
from simulator.machine import Machine, Vm
from simulator.world import World


@dataclass(frozen=True, slots=True)
class AdoptedHost:
    address: str
    host_uuid: str
    token: str


@dataclass(frozen=True, slots=True)
class AdoptedVm:
    address: str  # the machine it runs on
    uuid: str
    name: str
    cpu_num: int
    memory: int
    nics: tuple[str, ...]
    nfs_url: str  # the share holding the root volume
    root_path: str
    root_size: int


def adopt_hosts(world: World, like: str, hosts: list[AdoptedHost]) -> None:
    template = world.machine(like)
    if template.agent is None or template.host_uuid is None:
        raise SimulatorError(f"{like} was never deployed and connected: nothing to copy")
    for host in hosts:
        if world.find(host.address) is not None:
            raise SimulatorError(f"{host.address} is already a simulated machine")
    for host in hosts:
        machine = world.deploy(
            host.address, token=host.token, username=template.username, password=None
        )
        _copy_host_state(template, machine)
        machine.host_uuid = host.host_uuid


def _copy_host_state(template: Machine, machine: Machine) -> None:
    machine.password = template.password
    machine.cpu_num = template.cpu_num
    machine.cpu_speed = template.cpu_speed
    machine.cpu_sockets = template.cpu_sockets
    machine.memory_size = template.memory_size
    machine.cpu_overprovisioning = template.cpu_overprovisioning
    machine.physical_interfaces = template.physical_interfaces
    machine.version = template.version
    machine.bridges = copy.deepcopy(template.bridges)
    machine.nfs_mounts = dict(template.nfs_mounts) if template.nfs_mounts else None


def adopt_vms(world: World, vms: list[AdoptedVm]) -> None:
    """Checks every VM before adopting any, so a bad batch changes nothing."""
    wanted: dict[str, int] = {}
    for vm in vms:
        machine = world.machine(vm.address)
        if machine.vm(vm.uuid) is not None:
            raise SimulatorError(f"VM {vm.uuid} already runs on {vm.address}")
        if vm.nfs_url not in (machine.nfs_mounts or {}).values():
            raise SimulatorError(f"{vm.address} does not mount {vm.nfs_url}")
        wanted[vm.nfs_url] = wanted.get(vm.nfs_url, 0) + vm.root_size
    for url, size in wanted.items():
        share = world.nfs_share(url)
        if share.used + size > share.capacity:
            raise SimulatorError(
                f"the NFS share {url} has {share.capacity - share.used} bytes free, "
                f"the root volumes need {size}"
            )
    for vm in vms:
        machine = world.machine(vm.address)
        machine.add_vm(
            vm.uuid,
            Vm(
                state="Running",
                cpu_num=vm.cpu_num,
                memory=vm.memory,
                name=vm.name,
                nics=list(vm.nics),
            ),
        )
        share = world.nfs_share(vm.nfs_url)
        if share.files is None:
            share.files = {}
        share.used = store_file(share.files, share.used, share.capacity, vm.root_path, vm.root_size)
