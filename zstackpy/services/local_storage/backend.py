"""Local storage: a directory on each host's own disk, so capacity is per host."""

from __future__ import annotations

from zstackpy.services.local_storage.messages import LOCAL_STORAGE_TYPE
from zstackpy.services.primary_storage.extensions import (
    AgentCall,
    HostStorageCapacity,
    StorageOnHost,
    host_directory,
)

INIT_PATH = "/localstorage/init"


class LocalStorageBackend:
    """PrimaryStorageBackend of type ``LocalStorage``."""

    def storage_type(self) -> str:
        return LOCAL_STORAGE_TYPE

    def is_host_local(self) -> bool:
        return True

    def check_url(self, url: str) -> str:
        return host_directory(url, "url")

    def mount_path(self, primary_storage_uuid: str, url: str, requested: str | None) -> str | None:
        # The directory is the storage: hosts find it where the url says (as in ZStack).
        return url

    async def connect_host(self, storage: StorageOnHost, call: AgentCall) -> HostStorageCapacity:
        result = await call(
            INIT_PATH,
            {
                "path": storage.url,
                "hostUuid": storage.host_uuid,
                "uuid": storage.primary_storage_uuid,
            },
        )
        return HostStorageCapacity.from_agent(result, INIT_PATH)

    async def disconnect_host(self, storage: StorageOnHost, call: AgentCall) -> None:
        """Nothing is mounted: the directory and whatever is in it stay on the host."""
