"""NFS primary storage: one export, mounted on every host, whose capacity all hosts share."""

from __future__ import annotations

import re

from zstackpy.core.errors import ZError
from zstackpy.services.nfs_primary_storage.messages import NFS_TYPE
from zstackpy.services.primary_storage.extensions import (
    AgentCall,
    HostStorageCapacity,
    StorageOnHost,
    host_directory,
)
from zstackpy.services.primary_storage.messages import PrimaryStorageErr

MOUNT_PATH = "/nfsprimarystorage/mount"
UNMOUNT_PATH = "/nfsprimarystorage/unmount"
# ZStack's NfsPrimaryStorageKVMBackend mounts every share under this directory.
DEFAULT_MOUNT_ROOT = "/opt/zstack/nfsprimarystorage"

# server:/export, the server a host name, an IPv4 address or a bracketed IPv6 address.
_URL = re.compile(
    r"^(?P<server>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?):(?P<path>/\S*)$"
)


class NfsPrimaryStorageBackend:
    """PrimaryStorageBackend of type ``NFS``."""

    def storage_type(self) -> str:
        return NFS_TYPE

    def is_host_local(self) -> bool:
        return False

    def check_url(self, url: str) -> str:
        match = _URL.match(url.strip())
        if match is None:
            raise ZError(
                PrimaryStorageErr.INVALID_URL,
                f"an NFS url has the form host:/path (e.g. 192.168.0.2:/nfs/ps), got {url!r}",
                field="url",
                value=url,
            )
        export = match["path"]
        canonical = "/" if export.strip("/") == "" else host_directory(export, "url's export path")
        return f"{match['server']}:{canonical}"

    def mount_path(self, primary_storage_uuid: str, url: str, requested: str | None) -> str | None:
        if requested is not None:
            return host_directory(requested, "mountPath")
        return f"{DEFAULT_MOUNT_ROOT}/prim-{primary_storage_uuid}"

    async def connect_host(self, storage: StorageOnHost, call: AgentCall) -> HostStorageCapacity:
        result = await call(MOUNT_PATH, _command(storage))
        return HostStorageCapacity.from_agent(result, MOUNT_PATH)

    async def disconnect_host(self, storage: StorageOnHost, call: AgentCall) -> None:
        await call(UNMOUNT_PATH, _command(storage))


def _command(storage: StorageOnHost) -> dict[str, object]:
    return {
        "url": storage.url,
        "mountPath": storage.mount_path,
        "uuid": storage.primary_storage_uuid,
        "options": "",
    }
