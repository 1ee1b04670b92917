"""SFTP backup-storage agent (port 7171): capacity, image download and delete.

A download is simulated, never fetched: the size comes from a ``size=<bytes>`` query
parameter of the image URL (else 1 GiB) and the format from its extension.
"""

from __future__ import annotations

import hashlib
from typing import Any
from urllib.parse import parse_qs, urlsplit

from agents.runtime import AgentCommandError
from simulator.commands import SimCommand, field_str, store_file
from simulator.machine import GIB, Machine

DEFAULT_IMAGE_SIZE = GIB
DOWNLOAD_SCHEMES = frozenset({"http", "https", "file", "nfs"})


def _capacity(machine: Machine) -> dict[str, Any]:
    total = machine.storage_capacity
    return {"totalCapacity": total, "availableCapacity": total - machine.storage_used}


def connect(machine: Machine, cmd: dict[str, Any]) -> dict[str, Any]:
    field_str(cmd, "storagePath")
    return _capacity(machine)


def ping(machine: Machine, cmd: dict[str, Any]) -> dict[str, Any]:
    return {}


def get_capacity(machine: Machine, cmd: dict[str, Any]) -> dict[str, Any]:
    return _capacity(machine)


def image_size(url: str) -> int:
    """The simulated size of the image at ``url``; AgentCommandError for a bad URL."""
    parts = urlsplit(url)
    if parts.scheme.lower() not in DOWNLOAD_SCHEMES:
        raise AgentCommandError(
            f"cannot download {url}: scheme {parts.scheme or '(none)'!r} is not one of "
            f"{', '.join(sorted(DOWNLOAD_SCHEMES))}"
        )
    sizes = parse_qs(parts.query).get("size")
    if not sizes:
        return DEFAULT_IMAGE_SIZE
    try:
        size = int(sizes[0])
    except ValueError:
        raise AgentCommandError(
            f"cannot download {url}: size {sizes[0]!r} is not an integer"
        ) from None
    if size < 0:
        raise AgentCommandError(f"cannot download {url}: negative size")
    return size


def image_format(url: str) -> str:
    path = urlsplit(url).path.lower()
    if path.endswith(".iso"):
        return "iso"
    if path.endswith(".raw"):
        return "raw"
    return "qcow2"


def download(machine: Machine, cmd: dict[str, Any]) -> dict[str, Any]:
    url = field_str(cmd, "url")
    install_path = field_str(cmd, "installPath")
    size = image_size(url)
    if machine.images is None:
        machine.images = {}
    machine.storage_used = store_file(
        machine.images, machine.storage_used, machine.storage_capacity, install_path, size
    )
    # A stable stand-in checksum: the same URL always "downloads" the same bytes.
    md5 = hashlib.md5(url.encode(), usedforsecurity=False).hexdigest()
    return {
        "size": size,
        "actualSize": size,
        "md5Sum": md5,
        "format": image_format(url),
        **_capacity(machine),
    }


def delete(machine: Machine, cmd: dict[str, Any]) -> dict[str, Any]:
    path = field_str(cmd, "installUrl")
    if machine.images and path in machine.images:
        machine.storage_used -= machine.images.pop(path)
    return _capacity(machine)


COMMANDS: dict[str, SimCommand] = {
    "/sftpbackupstorage/connect": SimCommand(connect),
    "/sftpbackupstorage/ping": SimCommand(ping),
    "/sftpbackupstorage/getcapacity": SimCommand(get_capacity),
    "/sftpbackupstorage/download": SimCommand(download),
    "/sftpbackupstorage/delete": SimCommand(delete),
}
