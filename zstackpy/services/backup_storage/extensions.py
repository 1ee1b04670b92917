"""Extension points of the backup storage domain: what a backup storage type plugin
implements (ZStack's BackupStorageFactory + the type's BackupStorage class)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class BackupStorageSpec:
    """The type-independent columns of a backup storage, as a backend needs them. The
    backend keeps its own columns (address, credentials, agent token) in its own table."""

    uuid: str
    name: str
    type: str
    url: str  # the storage path on the machine


@dataclass(frozen=True, slots=True)
class BackupStorageCapacity:
    total: int  # bytes
    available: int  # bytes


@dataclass(frozen=True, slots=True)
class ImageDownload:
    image_uuid: str
    url: str
    format: str
    timeout: float  # seconds the download may take


@dataclass(frozen=True, slots=True)
class DownloadedImage:
    install_path: str
    size: int  # virtual size, bytes
    actual_size: int  # bytes the file takes on the storage
    md5_sum: str | None
    format: str | None


class BackupStorageBackend(Protocol):
    """One backup storage type (``serves_type`` tells which). The backup storage service
    calls these on the storage's owner node; ``connect_backup_storage`` runs in the
    storage's work queue, the others outside it (they may take long and need no row
    change). Each raises ZError (AGENT.* from the agent, or the backend's own codes)."""

    def serves_type(self, backup_storage_type: str) -> bool: ...

    async def connect_backup_storage(self, bs: BackupStorageSpec) -> BackupStorageCapacity:
        """(Re)deploy and connect the storage's agent; answer its capacity."""
        ...

    async def ping_backup_storage(self, bs: BackupStorageSpec, timeout: float) -> None:  # noqa: ASYNC109 -- the ping period bounds it
        """Raise ZError unless the agent answers within ``timeout`` s."""
        ...

    async def download_image(self, bs: BackupStorageSpec, image: ImageDownload) -> DownloadedImage:
        """Fetch the image onto the storage; answer where it is and its sizes."""
        ...

    async def delete_image(self, bs: BackupStorageSpec, install_path: str) -> None:
        """Delete an image file; deleting a file that is gone already succeeds."""
        ...
