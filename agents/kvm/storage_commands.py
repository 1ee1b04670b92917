"""Primary storage commands of the KVM agent: local storage (a directory of this host)
and NFS (a share libvirt mounts). Volumes are qcow2 files made through libvirt's storage
pools (``pools.py``). Every answer carries ``totalCapacity`` and ``availableCapacity`` of
the storage, as ZStack's agents do, so the node keeps its books.

Image downloads from an SFTP backup storage (``downloads.py``) and offline snapshot
merges work on the files themselves with ``qemu-img`` (``qemu_img.py``): libvirt's storage
API has neither. The pool of the directory is refreshed afterwards, so libvirt sees the
file as it now is.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import posixpath
from typing import Any

import libvirt

from agents.kvm import qemu_img
from agents.kvm.downloads import ImageDownloader, SftpSource
from agents.kvm.hypervisor import Hypervisor, is_missing
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
    def __init__(self, runtime: AgentRuntime, hv: Hypervisor, downloader: ImageDownloader) -> None:
        self.runtime, self.hv, self.downloader = runtime, hv, downloader
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
        rt.command("/localstorage/sftp/download", self.local_download)
        rt.command("/localstorage/snapshot/offlinemerge", self.local_merge)
        rt.command("/nfsprimarystorage/mount", self.nfs_mount)
        rt.command("/nfsprimarystorage/unmount", self.nfs_unmount)
        rt.command("/nfsprimarystorage/getcapacity", self.nfs_capacity)
        rt.command("/nfsprimarystorage/createemptyvolume", self.nfs_create_empty)
        rt.command("/nfsprimarystorage/delete", self.nfs_delete)
        rt.command("/nfsprimarystorage/sftp/createvolumefromtemplate", self.nfs_from_template)
        rt.command("/nfsprimarystorage/snapshot/create", self.nfs_snapshot)
        rt.command("/nfsprimarystorage/revertvolumefromsnapshot", self.nfs_revert)
        rt.command("/nfsprimarystorage/sftp/download", self.nfs_download)
        rt.command("/nfsprimarystorage/offlinesnapshotmerge", self.nfs_merge)

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

    def _local_root(self, cmd: dict[str, Any]) -> str:
        root = cmd.get("storagePath") or self.local_path
        if not isinstance(root, str) or not root:
            raise AgentCommandError("local storage is not initialised on this host")
        return root

    async def local_download(self, cmd: dict[str, Any]) -> dict[str, Any]:
        got = await self._download(cmd, self._local_root(cmd))
        return {**got, **(await self._local()).fields()}

    async def local_merge(self, cmd: dict[str, Any]) -> dict[str, Any]:
        await self._merge(cmd, self._local_root(cmd))
        return (await self._local()).fields()

    # ----- both -------------------------------------------------------------------------

    async def _download(self, cmd: dict[str, Any], root: str) -> dict[str, Any]:
        dest = inside(root, need_str(cmd, "primaryStorageInstallPath"), "primaryStorageInstallPath")
        port = cmd.get("sshPort", 22)
        if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
            raise AgentCommandError(f"sshPort {port!r} is not a TCP port")
        key = cmd.get("sshKey") or ""
        if not isinstance(key, str):
            raise AgentCommandError("sshKey must be a string (a private key) when given")
        username = cmd.get("username") or "root"
        if not isinstance(username, str):
            raise AgentCommandError("username must be a string when given")
        source = SftpSource(
            hostname=need_str(cmd, "hostname"),
            port=port,
            username=username,
            path=need_str(cmd, "backupStorageInstallPath"),
            key=key,
        )
        got = await self.downloader.download(source, dest)
        await self._refresh(dest)
        return {"size": got.virtual_size, "actualSize": got.actual_size, "format": got.format}

    async def _merge(self, cmd: dict[str, Any], root: str) -> None:
        """Fold snapshot ``srcPath`` into ``destPath`` (the volume's file, resting on it).
        ``fullRebase`` (the default): ``destPath`` becomes self-contained; else it rests
        on ``srcPath`` directly, the files between folded in. Either way the guest's view
        of the volume stays the same. Repeating a merge that happened succeeds."""
        src = inside(root, need_str(cmd, "srcPath"), "srcPath")
        dest = inside(root, need_str(cmd, "destPath"), "destPath")
        full = cmd.get("fullRebase", True)
        if not isinstance(full, bool):
            raise AgentCommandError("fullRebase must be true or false")
        if qemu_img.same_path(src, dest):
            raise AgentCommandError("srcPath and destPath must be different files")
        files = await qemu_img.chain(dest)
        below = [f.path for f in files[1:]]
        if full:
            if not below:
                return  # merged already: a retried command
            if not any(qemu_img.same_path(src, b) for b in below):
                raise AgentCommandError(
                    f"{dest} does not rest on {src}: nothing of it to merge",
                    backingChain=below,
                )
            # Named after the volume: a merge that died half-way (SIGKILL) is overwritten
            # by the next one, not left behind.
            part = os.path.join(os.path.dirname(dest), f".{os.path.basename(dest)}.merging")
            try:
                await asyncio.to_thread(_unlink_quietly, part)
                await qemu_img.to_qcow2(dest, part, "qcow2")
                # A rename: the volume is the old chain or the merged file, never half.
                await asyncio.to_thread(_replace_keeping_mode, part, dest)
            except BaseException:
                await asyncio.to_thread(_unlink_quietly, part)
                raise
        else:
            if below and qemu_img.same_path(src, below[0]):
                return  # rests on src directly already
            if not any(qemu_img.same_path(src, b) for b in below):
                raise AgentCommandError(
                    f"{dest} does not rest on {src}: nothing of it to merge",
                    backingChain=below,
                )
            await qemu_img.rebase(dest, src)
        await self._refresh(dest)

    async def _refresh(self, path: str) -> None:
        """Let libvirt's pool of ``path``'s directory see the file as it is now."""
        await self.hv.call(f"refresh the pool of {path}", _refresh_pool, path)

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

    async def nfs_download(self, cmd: dict[str, Any]) -> dict[str, Any]:
        await self._nfs(cmd)
        got = await self._download(cmd, need_str(cmd, "mountPath"))
        return {**got, **(await self._nfs(cmd)).fields()}

    async def nfs_merge(self, cmd: dict[str, Any]) -> dict[str, Any]:
        await self._nfs(cmd)
        await self._merge(cmd, need_str(cmd, "mountPath"))
        return (await self._nfs(cmd)).fields()


def inside(root: str, path: str, name: str) -> str:
    """``path`` when it is a normal absolute path under the storage's ``root``: a command
    never reaches a file outside the storage it names."""
    if not root.startswith("/") or not path.startswith("/") or "\x00" in path:
        raise AgentCommandError(f"{name} {path!r} is not an absolute path")
    normal = posixpath.normpath(path)
    base = posixpath.normpath(root)
    if normal != path.rstrip("/") or not normal.startswith(base.rstrip("/") + "/"):
        raise AgentCommandError(
            f"{name} {path!r} is not a file of the storage at {root}", storagePath=root
        )
    return normal


def _refresh_pool(conn: libvirt.virConnect, path: str) -> None:
    try:
        dir_pool(conn, posixpath.dirname(path)).refresh(0)
    except libvirt.libvirtError as exc:
        if not is_missing(exc):
            raise


def _replace_keeping_mode(part: str, dest: str) -> None:
    st = os.stat(dest)
    os.chmod(part, st.st_mode & 0o7777)
    with contextlib.suppress(PermissionError):
        os.chown(part, st.st_uid, st.st_gid)  # qemu may own the volume's file
    os.replace(part, dest)


def _unlink_quietly(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


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
