"""Extension points of the primary storage domain.

- ``PrimaryStorageBackend``: one storage type (local, NFS, ...), registered by its plugin.
- ``PrimaryStorageDetachExtension``: may refuse a detach (the volume service: volumes of
  the cluster's VMs still on the storage).
"""

from __future__ import annotations

import posixpath
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeGuard

from zstackpy.core.agent import AgentErr
from zstackpy.core.errors import ZError
from zstackpy.services.primary_storage.messages import PrimaryStorageErr

# Runs one agent command on one host and answers the agent's result (success true);
# raises ZError as AgentClient.call does. The primary storage service hands backends a
# call bound to the host: through the host's queue (HostAgentCallMsg) during attach, or
# straight to the agent during the host's own connect.
AgentCall = Callable[[str, dict[str, Any]], Awaitable[dict[str, Any]]]


@dataclass(frozen=True, slots=True)
class StorageOnHost:
    """A primary storage as one host's agent must see it."""

    primary_storage_uuid: str
    url: str
    mount_path: str | None
    host_uuid: str


@dataclass(frozen=True, slots=True)
class HostStorageCapacity:
    """What a host's agent reported after a mount or init, in bytes."""

    total: int
    available: int

    @classmethod
    def from_agent(cls, result: dict[str, Any], path: str) -> HostStorageCapacity:
        """Read ``totalCapacity``/``availableCapacity`` of a storage agent's answer;
        ZError AGENT.1005 when they are missing or not sizes."""
        total, available = result.get("totalCapacity"), result.get("availableCapacity")
        if not _is_size(total) or not _is_size(available):
            raise ZError(
                AgentErr.BAD_RESPONSE,
                f"the agent's answer to {path} has no valid totalCapacity/availableCapacity",
                path=path,
                totalCapacity=total,
                availableCapacity=available,
            )
        return cls(total, available)


def _is_size(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


# Where no storage belongs: the kernel's own trees (ZStack refuses the same for local storage).
_SYSTEM_DIRS = ("/dev", "/proc", "/sys", "/boot")


def host_directory(path: str, field: str) -> str:
    """``path`` as a canonical absolute directory on a host (no trailing slash, no ``..``);
    ZError PS.1001 naming ``field`` when it is relative, the root or a system directory."""
    if not path.startswith("/") or any(c.isspace() or c == "\x00" for c in path):
        raise ZError(
            PrimaryStorageErr.INVALID_URL,
            f"{field} must be an absolute directory path without spaces, got {path!r}",
            field=field,
            value=path,
        )
    canonical = posixpath.normpath(path)
    if canonical.startswith("//"):  # normpath keeps a leading double slash (POSIX rule)
        canonical = "/" + canonical.lstrip("/")
    if canonical == "/" or any(
        canonical == d or canonical.startswith(d + "/") for d in _SYSTEM_DIRS
    ):
        raise ZError(
            PrimaryStorageErr.INVALID_URL,
            f"{field} {path!r} is the root or a system directory: choose a directory of its own",
            field=field,
            value=path,
        )
    return canonical


class PrimaryStorageBackend(Protocol):
    """What differs between storage types. The primary storage service finds the backend
    by ``storage_type()`` and calls it inside the storage's work queue (or the host's,
    during a host connect); backends keep no state of their own."""

    def storage_type(self) -> str:
        """The ``type`` of the storage this backend serves: ``LocalStorage``, ``NFS``."""
        ...

    def is_host_local(self) -> bool:
        """True when each host has its own capacity (local disks), False when every host
        sees one shared capacity (a network share)."""
        ...

    def check_url(self, url: str) -> str:
        """The url in its canonical form; raise ZError PS.1001 when it has not the form
        the type needs (details say which)."""
        ...

    def mount_path(self, primary_storage_uuid: str, url: str, requested: str | None) -> str | None:
        """Where hosts find the storage: ``requested`` when the type lets callers choose
        (checked: ZError PS.1001), else the type's own choice."""
        ...

    async def connect_host(self, storage: StorageOnHost, call: AgentCall) -> HostStorageCapacity:
        """Make the storage usable on one host (mount the share, init the directory) and
        answer the capacity the agent reported. Idempotent: a host connected again (host
        reconnect, storage reconnect) answers fresh numbers."""
        ...

    async def disconnect_host(self, storage: StorageOnHost, call: AgentCall) -> None:
        """Undo ``connect_host`` on one host (unmount); a no-op for types with nothing to
        undo. Callers treat failures as best effort (logged)."""
        ...


@dataclass(frozen=True, slots=True)
class PrimaryStorageDetachRequest:
    """A storage about to be detached from a cluster (by the API)."""

    primary_storage_uuid: str
    storage_type: str
    cluster_uuid: str


class PrimaryStorageDetachExtension(Protocol):
    """Called in the storage's work queue before a detach from a cluster changes anything.
    Raise ZError (PS.1006 "in use" is the expected code) to refuse, e.g. while VMs of that
    cluster have volumes on the storage. Not called when the cluster itself is deleted."""

    async def check_detach(self, request: PrimaryStorageDetachRequest) -> None: ...
