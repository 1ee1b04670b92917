"""Primary storage commands of the KVM agent: local storage (a directory of this host)
and NFS (a share libvirt mounts). Volumes are qcow2 files made through libvirt's storage
pools (``pools.py``). Every answer carries ``totalCapacity`` and ``availableCapacity`` of
the storage, as ZStack's agents do, so the node keeps its books.

Not served here: image downloads from an SFTP backup storage and offline snapshot merges
(they need SSH to the backup storage and ``qemu-img commit``, outside libvirt's API); the
agent answers them with an error that says so.
"""

from __future__ import annotations

import posixpath
from typing import Any

import libvirt

from agents.kvm.hypervisor import Hypervisor
from agents.kvm.libvirt_xml import need_int, need_str
from agents.kvm.pools import (
    Capacity,
    capacity,
    create_volume,
    delete_volume,
    dir_pool,
    mount_nfs,
    nfs_pool,
    unmount_nfs,
    volume_size,
)
from agents.runtime import AgentCommandError, AgentRuntime

DEFAULT_TEMPLATE_SIZE = 1024**3


class StorageCommands:
    def __init__(self, runtime: AgentRuntime, hv: Hypervisor) -> None:
        self.runtime, self.hv = runtime, hv
        self.local_path: str | None = None  # from /localstorage/init

    def register(self) -> None:
        rt = self.runtime
        rt.command("/localstorage/init", self.local_init)
        rt.command("/localstorage/getphysicalcapacity", self.local_capacity)
        rt.command("/localstorage/volume/createempty", self.local_create_empty)
        rt.command("/localstorage/volume/createvolumefromcache", self.local_create_from_cache)
        rt.command("/localstorage/delete", self.local_delete)
        rt.command("/localstorage/snapshot/create", self.local_snapshot)
        rt.command("/localstorage/snapshot/revert", self.local_revert)
        rt.command("/localstorage/sftp/download", self.unsupported)
        rt.command("/localstorage/snapshot/offlinemerge", self.unsupported)
        rt.command("/nfsprimarystorage/mount", self.nfs_mount)
        rt.command("/nfsprimarystorage/unmount", self.nfs_unmount)
        rt.command("/nfsprimarystorage/getcapacity", self.nfs_capacity)
        rt.command("/nfsprimarystorage/createemptyvolume", self.nfs_create_empty)
        rt.command("/nfsprimarystorage/delete", self.nfs_delete)
        rt.command("/nfsprimarystorage/sftp/createvolumefromtemplate", self.nfs_from_template)
        rt.command("/nfsprimarystorage/snapshot/create", self.nfs_snapshot)
        rt.command("/nfsprimarystorage/revertvolumefromsnapshot", self.nfs_revert)
        rt.command("/nfsprimarystorage/sftp/download", self.unsupported)
        rt.command("/nfsprimarystorage/offlinesnapshotmerge", self.unsupported)

    async def unsupported(self, cmd: dict[str, Any]) -> dict[str, Any]:
        raise AgentCommandError(
            "this KVM agent does not copy images from backup storage or merge snapshots "
            "offline (it drives libvirt only)",
            unsupported=True,
        )

    # ----- local storage ----------------------------------------------------------------

    async def _local(self) -> Capacity:
        if self.local_path is None:
            raise AgentCommandError("local storage is not initialised on this host")
        path = self.local_path
        return await self.hv.call(
            f"read the capacity of {path}", lambda conn: capacity(dir_pool(conn, path))
        )

    async def local_init(self, cmd: dict[str, Any]) -> dict[str, Any]:
        self.local_path = need_str(cmd, "path")
        return (await self._local()).fields()

    async def local_capacity(self, cmd: dict[str, Any]) -> dict[str, Any]:
        return (await self._local()).fields()

    async def local_create_empty(self, cmd: dict[str, Any]) -> dict[str, Any]:
        path, size = need_str(cmd, "installUrl"), need_int(cmd, "size")
        await self.hv.call(f"create volume {path}", _create, path, size, None)
        return (await self._local()).fields()

    async def local_create_from_cache(self, cmd: dict[str, Any]) -> dict[str, Any]:
        template, path = need_str(cmd, "templatePathInCache"), need_str(cmd, "installUrl")
        size = await self.hv.call(f"create volume {path}", _clone, template, path)
        return {"size": size, "actualSize": size, **(await self._local()).fields()}

    async def local_delete(self, cmd: dict[str, Any]) -> dict[str, Any]:
        path = need_str(cmd, "path")
        await self.hv.call(f"delete volume {path}", delete_volume, path)
        return (await self._local()).fields()

    async def local_snapshot(self, cmd: dict[str, Any]) -> dict[str, Any]:
        taken = await self._snapshot(cmd)
        return {**taken, **(await self._local()).fields()}

    async def local_revert(self, cmd: dict[str, Any]) -> dict[str, Any]:
        reverted = await self._revert(cmd)
        return {**reverted, **(await self._local()).fields()}

    # ----- both -------------------------------------------------------------------------

    async def _snapshot(self, cmd: dict[str, Any]) -> dict[str, Any]:
        current, new_top = need_str(cmd, "volumeInstallPath"), need_str(cmd, "newVolumeInstallPath")
        if new_top == current:
            raise AgentCommandError("newVolumeInstallPath must differ from volumeInstallPath")
        size = await self.hv.call(f"snapshot volume {current}", _layer, current, new_top)
        return {"snapshotInstallPath": current, "newVolumeInstallPath": new_top, "size": size}

    async def _revert(self, cmd: dict[str, Any]) -> dict[str, Any]:
        snapshot = need_str(cmd, "snapshotInstallPath")
        new_top = cmd.get("newVolumeInstallPath")
        if not isinstance(new_top, str) or not new_top:
            raise AgentCommandError("the command needs newVolumeInstallPath")
        size = await self.hv.call(f"revert to snapshot {snapshot}", _layer, snapshot, new_top)
        return {"newVolumeInstallPath": new_top, "size": size}

    # ----- NFS --------------------------------------------------------------------------

    async def _nfs(self, cmd: dict[str, Any]) -> Capacity:
        ps_uuid = need_str(cmd, "uuid")
        return await self.hv.call(
            f"read the capacity of primary storage {ps_uuid}",
            lambda conn: capacity(nfs_pool(conn, ps_uuid)),
        )

    async def nfs_mount(self, cmd: dict[str, Any]) -> dict[str, Any]:
        ps_uuid, url = need_str(cmd, "uuid"), need_str(cmd, "url")
        mount_path = need_str(cmd, "mountPath")
        pool = await self.hv.call(f"mount {url}", mount_nfs, ps_uuid, url, mount_path)
        return (
            await self.hv.call(f"read the capacity of {url}", lambda _c: capacity(pool))
        ).fields()

    async def nfs_unmount(self, cmd: dict[str, Any]) -> dict[str, Any]:
        ps_uuid = need_str(cmd, "uuid")
        await self.hv.call(f"unmount primary storage {ps_uuid}", unmount_nfs, ps_uuid)
        return {}

    async def nfs_capacity(self, cmd: dict[str, Any]) -> dict[str, Any]:
        return (await self._nfs(cmd)).fields()

    async def nfs_create_empty(self, cmd: dict[str, Any]) -> dict[str, Any]:
        await self._nfs(cmd)  # refuses a storage that is not mounted
        path, size = need_str(cmd, "installUrl"), need_int(cmd, "size")
        await self.hv.call(f"create volume {path}", _create, path, size, None)
        return (await self._nfs(cmd)).fields()

    async def nfs_delete(self, cmd: dict[str, Any]) -> dict[str, Any]:
        await self._nfs(cmd)
        path = cmd.get("installPath") or cmd.get("path")
        if not isinstance(path, str) or not path:
            raise AgentCommandError("the command needs installPath")
        await self.hv.call(f"delete volume {path}", delete_volume, path)
        return (await self._nfs(cmd)).fields()

    async def nfs_from_template(self, cmd: dict[str, Any]) -> dict[str, Any]:
        await self._nfs(cmd)
        template, path = need_str(cmd, "templatePathInCache"), need_str(cmd, "installUrl")
        size = await self.hv.call(f"create volume {path}", _clone, template, path)
        return {"size": size, "actualSize": size, **(await self._nfs(cmd)).fields()}

    async def nfs_snapshot(self, cmd: dict[str, Any]) -> dict[str, Any]:
        await self._nfs(cmd)
        taken = await self._snapshot(cmd)
        return {**taken, **(await self._nfs(cmd)).fields()}

    async def nfs_revert(self, cmd: dict[str, Any]) -> dict[str, Any]:
        await self._nfs(cmd)
        reverted = await self._revert(cmd)
        return {**reverted, **(await self._nfs(cmd)).fields()}


def _create(conn: libvirt.virConnect, path: str, size: int, backing: str | None) -> None:
    create_volume(conn, path, size, backing)


def _clone(conn: libvirt.virConnect, template: str, path: str) -> int:
    """A thin qcow2 at ``path`` over the cached image ``template``; its virtual size."""
    size = volume_size(conn, template)
    create_volume(conn, path, size or DEFAULT_TEMPLATE_SIZE, backing=template)
    return size


def _layer(conn: libvirt.virConnect, below: str, new_top: str) -> int:
    """A new empty top file over ``below`` (a snapshot taken, or reverted to); the size of
    ``below``."""
    if posixpath.normpath(below) == posixpath.normpath(new_top):
        raise AgentCommandError("the new top file must differ from the file below it")
    size = volume_size(conn, below)
    create_volume(conn, new_top, size, backing=below)
    return size
