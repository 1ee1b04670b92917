"""KVM agent (port 7070): local-storage and NFS primary-storage commands.

Local storage is the machine's own disk (``local_storage_capacity``). An NFS share is
shared state of the whole simulator, keyed by its url: every machine that mounts it sees
the same capacity and files. Every answer carries ``totalCapacity`` and
``availableCapacity``, as ZStack's storage agents do, so the node can keep its books.
"""

from __future__ import annotations

from typing import Any

from agents.runtime import AgentCommandError
from simulator.commands import SimCommand, field_int, field_str, store_file
from simulator.machine import GIB, Machine
from simulator.nfs import NfsShare

DEFAULT_TEMPLATE_SIZE = GIB  # a cached image the simulator never saw being downloaded


# ----- local storage ---------------------------------------------------------------------


def _local_capacity(machine: Machine) -> dict[str, Any]:
    total = machine.local_storage_capacity
    return {"totalCapacity": total, "availableCapacity": total - machine.local_used}


def local_init(machine: Machine, cmd: dict[str, Any]) -> dict[str, Any]:
    field_str(cmd, "path")
    return _local_capacity(machine)


def local_capacity(machine: Machine, cmd: dict[str, Any]) -> dict[str, Any]:
    return _local_capacity(machine)


def _local_store(machine: Machine, path: str, size: int) -> None:
    if machine.local_files is None:
        machine.local_files = {}
    machine.local_used = store_file(
        machine.local_files, machine.local_used, machine.local_storage_capacity, path, size
    )


def local_create_empty(machine: Machine, cmd: dict[str, Any]) -> dict[str, Any]:
    _local_store(machine, field_str(cmd, "installUrl"), field_int(cmd, "size"))
    return _local_capacity(machine)


def local_create_from_cache(machine: Machine, cmd: dict[str, Any]) -> dict[str, Any]:
    template = field_str(cmd, "templatePathInCache")
    size = (machine.local_files or {}).get(template, DEFAULT_TEMPLATE_SIZE)
    # Counted in full, though a real qcow2 clone starts thin: the books err on the safe side.
    _local_store(machine, field_str(cmd, "installUrl"), size)
    return {"size": size, "actualSize": size, **_local_capacity(machine)}


def local_delete(machine: Machine, cmd: dict[str, Any]) -> dict[str, Any]:
    path = field_str(cmd, "path")
    if machine.local_files and path in machine.local_files:
        machine.local_used -= machine.local_files.pop(path)
    return _local_capacity(machine)


# ----- NFS primary storage -------------------------------------------------------------


def _share_capacity(share: NfsShare) -> dict[str, Any]:
    return {"totalCapacity": share.capacity, "availableCapacity": share.capacity - share.used}


def _mounted_share(machine: Machine, cmd: dict[str, Any]) -> NfsShare:
    ps_uuid = field_str(cmd, "uuid")
    url = (machine.nfs_mounts or {}).get(ps_uuid)
    if url is None:
        raise AgentCommandError(f"primary storage {ps_uuid} is not mounted on {machine.address}")
    return machine.world.nfs_share(url)


def nfs_mount(machine: Machine, cmd: dict[str, Any]) -> dict[str, Any]:
    url = field_str(cmd, "url")
    field_str(cmd, "mountPath")
    if machine.nfs_mounts is None:
        machine.nfs_mounts = {}
    machine.nfs_mounts[field_str(cmd, "uuid")] = url
    return _share_capacity(machine.world.nfs_share(url))


def nfs_unmount(machine: Machine, cmd: dict[str, Any]) -> dict[str, Any]:
    if machine.nfs_mounts:
        machine.nfs_mounts.pop(field_str(cmd, "uuid"), None)
    return {}


def nfs_capacity(machine: Machine, cmd: dict[str, Any]) -> dict[str, Any]:
    return _share_capacity(_mounted_share(machine, cmd))


def nfs_create_empty(machine: Machine, cmd: dict[str, Any]) -> dict[str, Any]:
    share = _mounted_share(machine, cmd)
    if share.files is None:
        share.files = {}
    path, size = field_str(cmd, "installUrl"), field_int(cmd, "size")
    share.used = store_file(share.files, share.used, share.capacity, path, size)
    return _share_capacity(share)


def nfs_delete(machine: Machine, cmd: dict[str, Any]) -> dict[str, Any]:
    share = _mounted_share(machine, cmd)
    path = cmd.get("installPath") or cmd.get("path")
    if not isinstance(path, str) or not path:
        raise AgentCommandError("the command needs installPath")
    if share.files and path in share.files:
        share.used -= share.files.pop(path)
    return _share_capacity(share)


COMMANDS: dict[str, SimCommand] = {
    "/localstorage/init": SimCommand(local_init),
    "/localstorage/getphysicalcapacity": SimCommand(local_capacity),
    "/localstorage/volume/createempty": SimCommand(local_create_empty),
    "/localstorage/volume/createvolumefromcache": SimCommand(local_create_from_cache),
    "/localstorage/delete": SimCommand(local_delete),
    "/nfsprimarystorage/mount": SimCommand(nfs_mount),
    "/nfsprimarystorage/unmount": SimCommand(nfs_unmount),
    "/nfsprimarystorage/getcapacity": SimCommand(nfs_capacity),
    "/nfsprimarystorage/createemptyvolume": SimCommand(nfs_create_empty),
    "/nfsprimarystorage/delete": SimCommand(nfs_delete),
}
