"""KVM agent (port 7070): local-storage and NFS primary-storage commands.

Local storage is the machine's own disk (``local_storage_capacity``). An NFS share is
shared state of the whole simulator, keyed by its url: every machine that mounts it sees
the same capacity and files. Every answer carries ``totalCapacity`` and
``availableCapacity``, as ZStack's storage agents do, so the node can keep its books.

Images come into a storage's cache from an SFTP backup storage machine of the same
simulator (``hostname``, ``backupStorageInstallPath``): the file's size is what that
machine holds; nothing is fetched. Snapshots are qcow2 external ones: the volume's file
becomes the snapshot and an empty new file takes the writes from then on.
"""

from __future__ import annotations

import uuid
from typing import Any

from agents.runtime import AgentCommandError
from simulator.commands import SimCommand, field_int, field_str, store_file
from simulator.machine import GIB, SFTP_PORT, Machine
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


def _local_files(machine: Machine) -> dict[str, int]:
    if machine.local_files is None:
        machine.local_files = {}
    return machine.local_files


def local_download(machine: Machine, cmd: dict[str, Any]) -> dict[str, Any]:
    size = _backup_storage_file(machine, cmd)
    _local_store(machine, field_str(cmd, "primaryStorageInstallPath"), size)
    return {"size": size, "actualSize": size, **_local_capacity(machine)}


def local_take_snapshot(machine: Machine, cmd: dict[str, Any]) -> dict[str, Any]:
    taken = _take_snapshot(_local_files(machine), cmd)
    _local_store(machine, taken["newVolumeInstallPath"], 0)
    return {**taken, **_local_capacity(machine)}


def local_revert(machine: Machine, cmd: dict[str, Any]) -> dict[str, Any]:
    reverted = _revert(_local_files(machine), cmd)
    _local_store(machine, reverted["newVolumeInstallPath"], 0)
    return {**reverted, **_local_capacity(machine)}


def local_merge(machine: Machine, cmd: dict[str, Any]) -> dict[str, Any]:
    files = _local_files(machine)
    dest, size = _merged(files, cmd)
    _local_store(machine, dest, size)
    return _local_capacity(machine)


# ----- what both storage types share ---------------------------------------------------


def _backup_storage_file(machine: Machine, cmd: dict[str, Any]) -> int:
    """The size of the image a download copies: what the SFTP machine ``hostname`` of
    this simulator holds at ``backupStorageInstallPath``."""
    hostname = field_str(cmd, "hostname")
    path = field_str(cmd, "backupStorageInstallPath")
    bs = machine.world.find(hostname, SFTP_PORT)
    if bs is None or not bs.reachable:
        raise AgentCommandError(f"cannot reach backup storage {hostname}:22 from {machine.address}")
    size = (bs.images or {}).get(path)
    if size is None:
        raise AgentCommandError(f"no file {path} on backup storage {hostname}")
    return size


def _take_snapshot(files: dict[str, int], cmd: dict[str, Any]) -> dict[str, Any]:
    current = field_str(cmd, "volumeInstallPath")
    new_top = field_str(cmd, "newVolumeInstallPath")
    if new_top == current:
        raise AgentCommandError("newVolumeInstallPath must differ from volumeInstallPath")
    return {
        "snapshotInstallPath": current,
        "newVolumeInstallPath": new_top,
        "size": files.get(current, 0),
    }


def _revert(files: dict[str, int], cmd: dict[str, Any]) -> dict[str, Any]:
    snapshot = field_str(cmd, "snapshotInstallPath")
    if snapshot not in files:
        raise AgentCommandError(f"no snapshot file {snapshot}")
    new_top = cmd.get("newVolumeInstallPath")
    if not isinstance(new_top, str) or not new_top:
        new_top = f"{snapshot.rpartition('/')[0]}/{uuid.uuid4().hex}.qcow2"
    return {"newVolumeInstallPath": new_top, "size": files[snapshot]}


def _merged(files: dict[str, int], cmd: dict[str, Any]) -> tuple[str, int]:
    """(dest, its size once the snapshot src is folded into it)."""
    src, dest = field_str(cmd, "srcPath"), field_str(cmd, "destPath")
    return dest, files.get(dest, 0) + files.get(src, 0)


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


def _share_store(share: NfsShare, path: str, size: int) -> None:
    if share.files is None:
        share.files = {}
    share.used = store_file(share.files, share.used, share.capacity, path, size)


def _share_files(share: NfsShare) -> dict[str, int]:
    if share.files is None:
        share.files = {}
    return share.files


def nfs_download(machine: Machine, cmd: dict[str, Any]) -> dict[str, Any]:
    share = _mounted_share(machine, cmd)
    size = _backup_storage_file(machine, cmd)
    _share_store(share, field_str(cmd, "primaryStorageInstallPath"), size)
    return {"size": size, "actualSize": size, **_share_capacity(share)}


def nfs_create_from_template(machine: Machine, cmd: dict[str, Any]) -> dict[str, Any]:
    share = _mounted_share(machine, cmd)
    template = field_str(cmd, "templatePathInCache")
    size = _share_files(share).get(template, DEFAULT_TEMPLATE_SIZE)
    _share_store(share, field_str(cmd, "installUrl"), size)
    return {"size": size, "actualSize": size, **_share_capacity(share)}


def nfs_take_snapshot(machine: Machine, cmd: dict[str, Any]) -> dict[str, Any]:
    share = _mounted_share(machine, cmd)
    taken = _take_snapshot(_share_files(share), cmd)
    _share_store(share, taken["newVolumeInstallPath"], 0)
    return {**taken, **_share_capacity(share)}


def nfs_revert(machine: Machine, cmd: dict[str, Any]) -> dict[str, Any]:
    share = _mounted_share(machine, cmd)
    reverted = _revert(_share_files(share), cmd)
    _share_store(share, reverted["newVolumeInstallPath"], 0)
    return {**reverted, **_share_capacity(share)}


def nfs_merge(machine: Machine, cmd: dict[str, Any]) -> dict[str, Any]:
    share = _mounted_share(machine, cmd)
    dest, size = _merged(_share_files(share), cmd)
    _share_store(share, dest, size)
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
    "/localstorage/sftp/download": SimCommand(local_download),
    "/localstorage/snapshot/create": SimCommand(local_take_snapshot),
    "/localstorage/snapshot/revert": SimCommand(local_revert),
    "/localstorage/snapshot/offlinemerge": SimCommand(local_merge),
    "/nfsprimarystorage/mount": SimCommand(nfs_mount),
    "/nfsprimarystorage/unmount": SimCommand(nfs_unmount),
    "/nfsprimarystorage/getcapacity": SimCommand(nfs_capacity),
    "/nfsprimarystorage/createemptyvolume": SimCommand(nfs_create_empty),
    "/nfsprimarystorage/delete": SimCommand(nfs_delete),
    "/nfsprimarystorage/sftp/download": SimCommand(nfs_download),
    "/nfsprimarystorage/sftp/createvolumefromtemplate": SimCommand(nfs_create_from_template),
    "/nfsprimarystorage/snapshot/create": SimCommand(nfs_take_snapshot),
    "/nfsprimarystorage/revertvolumefromsnapshot": SimCommand(nfs_revert),
    "/nfsprimarystorage/offlinesnapshotmerge": SimCommand(nfs_merge),
}
