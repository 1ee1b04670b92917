"""Extension points of the volume domain.

- ``VolumeStorageBackend``: how volumes, snapshots and image caches are made on one type
  of primary storage (the agent commands and where files go). The volume plugin registers
  the LocalStorage and NFS ones; another storage type's plugin registers its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from zstackpy.services.primary_storage.extensions import AgentCall


@dataclass(frozen=True, slots=True)
class VolumeStorage:
    """A primary storage as a volume backend needs it."""

    primary_storage_uuid: str
    storage_type: str
    url: str
    mount_path: str | None

    @property
    def root(self) -> str:
        """The directory hosts see the storage at."""
        return (self.mount_path or self.url).rstrip("/")


@dataclass(frozen=True, slots=True)
class ImageSource:
    """Where an image is on a backup storage, for a host to copy it from (SFTP)."""

    backup_storage_uuid: str
    hostname: str
    username: str
    ssh_port: int
    install_path: str


@dataclass(frozen=True, slots=True)
class TakenSnapshot:
    """A snapshot as the agent made it: the volume's file became ``snapshot_path`` and the
    volume continues in ``new_volume_path`` (qcow2 external snapshots)."""

    snapshot_path: str
    new_volume_path: str
    size: int


class VolumeStorageBackend(Protocol):
    """One storage type's volume operations. Each runs one agent command through
    ``call`` (bound to a host that reaches the storage) and raises ZError (AGENT.*) when
    the agent fails. Deleting a file that is gone succeeds."""

    def storage_type(self) -> str:
        """The primary storage ``type`` served: ``LocalStorage``, ``NFS``."""
        ...

    def volume_path(self, storage: VolumeStorage, volume_uuid: str, volume_type: str) -> str:
        """Where a new volume's file goes."""
        ...

    def cache_path(self, storage: VolumeStorage, image_uuid: str) -> str:
        """Where the image cache of ``image_uuid`` goes."""
        ...

    async def download_to_cache(
        self, storage: VolumeStorage, source: ImageSource, cache_path: str, call: AgentCall
    ) -> None:
        """Copy an image from backup storage into the storage's image cache."""
        ...

    async def create_from_cache(
        self,
        storage: VolumeStorage,
        cache_path: str,
        install_path: str,
        volume_uuid: str,
        size: int,
        call: AgentCall,
    ) -> int:
        """Make a root volume backed by a cached image; answer its actual size."""
        ...

    async def create_empty(
        self,
        storage: VolumeStorage,
        install_path: str,
        volume_uuid: str,
        size: int,
        call: AgentCall,
    ) -> None:
        """Make an empty volume of ``size`` bytes."""
        ...

    async def delete_file(self, storage: VolumeStorage, install_path: str, call: AgentCall) -> None:
        """Delete a volume, snapshot or cache file."""
        ...

    async def take_snapshot(
        self,
        storage: VolumeStorage,
        volume_uuid: str,
        volume_path: str,
        new_volume_path: str,
        call: AgentCall,
    ) -> TakenSnapshot:
        """Snapshot a volume no running VM uses."""
        ...

    async def revert(
        self, storage: VolumeStorage, snapshot_path: str, new_volume_path: str, call: AgentCall
    ) -> str:
        """Make a new volume file on top of a snapshot; answer its path."""
        ...

    async def merge(
        self, storage: VolumeStorage, snapshot_path: str, volume_path: str, call: AgentCall
    ) -> None:
        """Fold a snapshot (and what it rests on) into the volume's file, so the snapshot
        file can go (offline)."""
        ...
