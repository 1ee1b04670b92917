"""Storage pools and volumes through libvirt (blocking: called in ``Hypervisor`` workers).

The node names volumes by path (``/zstack_ps/rootVolumes/acct-x/vol-y/vol-y.qcow2``),
and a libvirt ``dir`` pool holds the files of one directory only, so every directory a
volume lives in gets its own pool (named from a hash of the path, so it is found again
after a restart). An NFS primary storage is a ``netfs`` pool (libvirt mounts it); its
volumes live in ``dir`` pools under the mount point.
"""

from __future__ import annotations

import hashlib
import posixpath
from dataclasses import dataclass

import libvirt

from agents.kvm.hypervisor import is_missing
from agents.kvm.libvirt_xml import dir_pool_xml, nfs_pool_xml, volume_xml
from agents.runtime import AgentCommandError

DIR_POOL_PREFIX = "zs-dir-"
NFS_POOL_PREFIX = "zs-nfs-"


@dataclass(frozen=True, slots=True)
class Capacity:
    total: int
    available: int

    def fields(self) -> dict[str, int]:
        return {"totalCapacity": self.total, "availableCapacity": self.available}


def _absolute(path: str) -> str:
    if not path.startswith("/") or "\x00" in path:
        raise AgentCommandError(f"{path!r} is not an absolute path")
    normal = posixpath.normpath(path)
    if normal != path.rstrip("/") or ".." in normal.split("/"):
        raise AgentCommandError(f"{path!r} is not a normal absolute path")
    return normal


def _active(pool: libvirt.virStoragePool) -> libvirt.virStoragePool:
    if not pool.isActive():
        pool.create(0)
    pool.setAutostart(1)
    return pool


def dir_pool(conn: libvirt.virConnect, directory: str) -> libvirt.virStoragePool:
    """The active pool of ``directory``, defined, built (the directory made) and started
    when it is new."""
    directory = _absolute(directory)
    name = DIR_POOL_PREFIX + hashlib.sha256(directory.encode()).hexdigest()[:24]
    try:
        pool = conn.storagePoolLookupByName(name)
    except libvirt.libvirtError as exc:
        if not is_missing(exc):
            raise
        pool = conn.storagePoolDefineXML(dir_pool_xml(name, directory), 0)
        pool.build(0)
    return _active(pool)


def capacity(pool: libvirt.virStoragePool) -> Capacity:
    pool.refresh(0)
    _state, total, _allocation, available = pool.info()
    return Capacity(total, available)


def create_volume(
    conn: libvirt.virConnect, path: str, size: int, backing: str | None = None
) -> libvirt.virStorageVol:
    """A qcow2 file at ``path`` (thin over ``backing``). An existing file of that path is
    replaced, as a retried create would expect."""
    path = _absolute(path)
    directory, name = posixpath.split(path)
    pool = dir_pool(conn, directory)
    try:
        pool.storageVolLookupByName(name).delete(0)
    except libvirt.libvirtError as exc:
        if not is_missing(exc):
            raise
    return pool.createXML(volume_xml(name, size, backing), 0)


def volume_at(conn: libvirt.virConnect, path: str) -> libvirt.virStorageVol:
    """The volume of the file at ``path``. A pool knows the files it had when it was last
    refreshed: one made beside it (a live snapshot's new top, made by QEMU) is found after
    refreshing the pool once."""
    path = _absolute(path)
    pool = dir_pool(conn, posixpath.dirname(path))
    try:
        return conn.storageVolLookupByPath(path)
    except libvirt.libvirtError as exc:
        if not is_missing(exc):
            raise
    pool.refresh(0)
    return conn.storageVolLookupByPath(path)


def volume_size(conn: libvirt.virConnect, path: str) -> int:
    """The virtual size of the volume at ``path``."""
    _type, size, _allocation = volume_at(conn, path).info()
    return int(size)


def delete_volume(conn: libvirt.virConnect, path: str) -> None:
    """Delete the file at ``path``; a file already gone is no error (retried deletes)."""
    try:
        volume_at(conn, path).delete(0)
    except libvirt.libvirtError as exc:
        if not is_missing(exc):
            raise


def nfs_pool_name(primary_storage_uuid: str) -> str:
    return NFS_POOL_PREFIX + primary_storage_uuid


def mount_nfs(
    conn: libvirt.virConnect, primary_storage_uuid: str, url: str, mount_path: str
) -> libvirt.virStoragePool:
    name = nfs_pool_name(primary_storage_uuid)
    try:
        pool = conn.storagePoolLookupByName(name)
    except libvirt.libvirtError as exc:
        if not is_missing(exc):
            raise
        pool = conn.storagePoolDefineXML(nfs_pool_xml(name, url, _absolute(mount_path)), 0)
        pool.build(0)
    return _active(pool)


def nfs_pool(conn: libvirt.virConnect, primary_storage_uuid: str) -> libvirt.virStoragePool:
    try:
        pool = conn.storagePoolLookupByName(nfs_pool_name(primary_storage_uuid))
    except libvirt.libvirtError as exc:
        if is_missing(exc):
            raise AgentCommandError(
                f"primary storage {primary_storage_uuid} is not mounted on this host"
            ) from None
        raise
    return _active(pool)


def unmount_nfs(conn: libvirt.virConnect, primary_storage_uuid: str) -> None:
    try:
        pool = conn.storagePoolLookupByName(nfs_pool_name(primary_storage_uuid))
    except libvirt.libvirtError as exc:
        if is_missing(exc):
            return  # already unmounted: a retried unmount succeeds
        raise
    if pool.isActive():
        pool.destroy()
    pool.undefine()
