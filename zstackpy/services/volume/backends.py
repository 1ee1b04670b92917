"""The volume backends of local storage and NFS: agent paths and field names as ZStack's
``LocalStorageKvmBackend`` / ``NfsPrimaryStorageKVMBackend`` (and their SFTP mediators),
file layout as ZStack's (``rootVolumes/``, ``dataVolumes/``, ``imagecache/template/``).

Offline snapshots are our addition: ZStack takes them with ``/vm/volume/takesnapshot``
(``online`` false) even without a VM; we give each storage type its own command
(``/localstorage/snapshot/create``, ``/nfsprimarystorage/snapshot/create``) so a volume
that no VM holds is snapshotted by the storage's agent alone.
"""

from __future__ import annotations

from typing import Any, ClassVar

from zstackpy.core.agent import AgentErr
from zstackpy.core.errors import ZError
from zstackpy.services.primary_storage.extensions import AgentCall
from zstackpy.services.volume.extensions import ImageSource, TakenSnapshot, VolumeStorage

LOCAL_STORAGE_TYPE = "LocalStorage"
NFS_TYPE = "NFS"


class _FileLayout:
    """ZStack's layout of volumes and caches under a storage's directory."""

    def volume_path(self, storage: VolumeStorage, volume_uuid: str, volume_type: str) -> str:
        folder = "rootVolumes" if volume_type == "Root" else "dataVolumes"
        return f"{storage.root}/{folder}/vol-{volume_uuid}/{volume_uuid}.qcow2"

    def cache_path(self, storage: VolumeStorage, image_uuid: str) -> str:
        return f"{storage.root}/imagecache/template/{image_uuid}/{image_uuid}.qcow2"


def _path(result: dict[str, Any], field: str, command: str) -> str:
    value = result.get(field)
    if not isinstance(value, str) or not value:
        raise ZError(
            AgentErr.BAD_RESPONSE,
            f"the agent's answer to {command} has no {field}",
            path=command,
            field=field,
        )
    return value


def _size(result: dict[str, Any], field: str, default: int) -> int:
    value = result.get(field)
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    return default


class _Backend(_FileLayout):
    """What both types share; subclasses name the paths and add the storage's fields."""

    TYPE: ClassVar[str]
    DOWNLOAD: ClassVar[str]
    CREATE_FROM_CACHE: ClassVar[str]
    CREATE_EMPTY: ClassVar[str]
    DELETE: ClassVar[str]
    TAKE_SNAPSHOT: ClassVar[str]
    REVERT: ClassVar[str]
    MERGE: ClassVar[str]

    def storage_type(self) -> str:
        return self.TYPE

    def _fields(self, storage: VolumeStorage) -> dict[str, Any]:
        """Fields every command of this type carries (which storage, where)."""
        raise NotImplementedError

    def _delete_fields(self, install_path: str) -> dict[str, Any]:
        raise NotImplementedError

    async def download_to_cache(
        self, storage: VolumeStorage, source: ImageSource, cache_path: str, call: AgentCall
    ) -> None:
        await call(
            self.DOWNLOAD,
            {
                **self._fields(storage),
                "hostname": source.hostname,
                "username": source.username,
                "sshPort": source.ssh_port,
                "sshKey": "",
                "backupStorageInstallPath": source.install_path,
                "primaryStorageInstallPath": cache_path,
            },
        )

    async def create_from_cache(
        self,
        storage: VolumeStorage,
        cache_path: str,
        install_path: str,
        volume_uuid: str,
        size: int,
        call: AgentCall,
    ) -> int:
        result = await call(
            self.CREATE_FROM_CACHE,
            {
                **self._fields(storage),
                "templatePathInCache": cache_path,
                "installUrl": install_path,
                "volumeUuid": volume_uuid,
                "virtualSize": size,
            },
        )
        return _size(result, "actualSize", _size(result, "size", 0))

    async def create_empty(
        self,
        storage: VolumeStorage,
        install_path: str,
        volume_uuid: str,
        size: int,
        call: AgentCall,
    ) -> None:
        await call(
            self.CREATE_EMPTY,
            {
                **self._fields(storage),
                "installUrl": install_path,
                "size": size,
                "volumeUuid": volume_uuid,
            },
        )

    async def delete_file(self, storage: VolumeStorage, install_path: str, call: AgentCall) -> None:
        await call(self.DELETE, {**self._fields(storage), **self._delete_fields(install_path)})

    async def take_snapshot(
        self,
        storage: VolumeStorage,
        volume_uuid: str,
        volume_path: str,
        new_volume_path: str,
        call: AgentCall,
    ) -> TakenSnapshot:
        result = await call(
            self.TAKE_SNAPSHOT,
            {
                **self._fields(storage),
                "volumeUuid": volume_uuid,
                "volumeInstallPath": volume_path,
                "newVolumeInstallPath": new_volume_path,
            },
        )
        return TakenSnapshot(
            snapshot_path=_path(result, "snapshotInstallPath", self.TAKE_SNAPSHOT),
            new_volume_path=_path(result, "newVolumeInstallPath", self.TAKE_SNAPSHOT),
            size=_size(result, "size", 0),
        )

    async def revert(
        self, storage: VolumeStorage, snapshot_path: str, new_volume_path: str, call: AgentCall
    ) -> str:
        result = await call(
            self.REVERT,
            {
                **self._fields(storage),
                "snapshotInstallPath": snapshot_path,
                "newVolumeInstallPath": new_volume_path,
            },
        )
        return _path(result, "newVolumeInstallPath", self.REVERT)

    async def merge(
        self, storage: VolumeStorage, snapshot_path: str, volume_path: str, call: AgentCall
    ) -> None:
        await call(
            self.MERGE,
            {
                **self._fields(storage),
                "srcPath": snapshot_path,
                "destPath": volume_path,
                "fullRebase": True,
            },
        )


class LocalStorageVolumeBackend(_Backend):
    """VolumeStorageBackend of ``LocalStorage``: commands run on the volume's host."""

    TYPE = LOCAL_STORAGE_TYPE
    DOWNLOAD = "/localstorage/sftp/download"
    CREATE_FROM_CACHE = "/localstorage/volume/createvolumefromcache"
    CREATE_EMPTY = "/localstorage/volume/createempty"
    DELETE = "/localstorage/delete"
    TAKE_SNAPSHOT = "/localstorage/snapshot/create"
    REVERT = "/localstorage/snapshot/revert"
    MERGE = "/localstorage/snapshot/offlinemerge"

    def _fields(self, storage: VolumeStorage) -> dict[str, Any]:
        return {"storagePath": storage.root, "primaryStorageUuid": storage.primary_storage_uuid}

    def _delete_fields(self, install_path: str) -> dict[str, Any]:
        return {"path": install_path}


class NfsVolumeBackend(_Backend):
    """VolumeStorageBackend of ``NFS``: commands run on any host that mounts the share."""

    TYPE = NFS_TYPE
    DOWNLOAD = "/nfsprimarystorage/sftp/download"
    CREATE_FROM_CACHE = "/nfsprimarystorage/sftp/createvolumefromtemplate"
    CREATE_EMPTY = "/nfsprimarystorage/createemptyvolume"
    DELETE = "/nfsprimarystorage/delete"
    TAKE_SNAPSHOT = "/nfsprimarystorage/snapshot/create"
    REVERT = "/nfsprimarystorage/revertvolumefromsnapshot"
    MERGE = "/nfsprimarystorage/offlinesnapshotmerge"

    def _fields(self, storage: VolumeStorage) -> dict[str, Any]:
        return {"uuid": storage.primary_storage_uuid, "mountPath": storage.root}

    def _delete_fields(self, install_path: str) -> dict[str, Any]:
        return {"installPath": install_path}
