"""Copying an image from an SFTP backup storage into a primary storage's image cache.

Where the bytes come from:

- the backup storage is this machine (its hostname is a loopback address or one of this
  host's own addresses) and the file is there: a plain local copy, no SSH to oneself;
- otherwise SFTP to ``hostname:sshPort`` as ``username``, with the private key the
  command carries (``sshKey``) or else the agent's ``sftp_key_file``; the server's key must
  be in ``sftp_known_hosts`` (an empty setting turns the check off, for trusted networks
  only).

The copy lands in a hidden file beside the destination and is renamed over it only once
complete and checked, so a failed or cancelled download leaves nothing the node could take
for an image, and a retried one starts clean. An image that is not qcow2 (a raw disk) is
converted, because cached images are the qcow2 backing files of the volumes made from them.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import os
import shutil
import socket
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import asyncssh

from agents.kvm import qemu_img
from agents.runtime import AgentCommandError

CHUNK = 1 << 20
CONNECT_TIMEOUT_S = 30


@dataclass(frozen=True, slots=True)
class SftpSource:
    hostname: str
    port: int
    username: str
    path: str
    key: str  # the private key's text; empty: the agent's own key file

    def url(self) -> str:
        return f"sftp://{self.username}@{self.hostname}:{self.port}{self.path}"


@dataclass(frozen=True, slots=True)
class Downloaded:
    format: str  # what the backup storage held (qcow2, raw)
    virtual_size: int
    actual_size: int


async def is_this_host(hostname: str) -> bool:
    """True when ``hostname`` names this machine: a loopback address, or an address a
    socket can bind here (only local addresses can be bound)."""
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(hostname, None, type=socket.SOCK_DGRAM)
    except OSError:
        return False
    for family, _type, _proto, _name, sockaddr in infos:
        address = ipaddress.ip_address(str(sockaddr[0]).split("%")[0])
        if address.is_loopback:
            return True
        with socket.socket(family, socket.SOCK_DGRAM) as probe:
            try:
                probe.bind((str(sockaddr[0]), 0))
            except OSError:
                continue
            return True
    return False


class ImageDownloader:
    """``download(source, dest)``: the image at ``source`` as a qcow2 file at ``dest``."""

    def __init__(self, key_file: Path, known_hosts: str) -> None:
        self.key_file, self.known_hosts = key_file, known_hosts

    async def download(self, source: SftpSource, dest: str) -> Downloaded:
        directory, name = os.path.split(dest)
        part = os.path.join(directory, f".{name}.part-{uuid.uuid4().hex}")
        converted = part + ".qcow2"
        try:
            await asyncio.to_thread(_clear_leftovers, directory, f".{name}.part-")
            if await is_this_host(source.hostname) and await asyncio.to_thread(
                os.path.isfile, source.path
            ):
                await asyncio.to_thread(shutil.copyfile, source.path, part)
            else:
                await self._sftp(source, part)
            got = await qemu_img.info(part)
            if got.backing is not None:
                # A cached image is the base of a chain; one that names a file of its own
                # to read could make a guest read any file of this host.
                raise AgentCommandError(
                    f"{source.url()} is not a self-contained image: it rests on {got.backing!r}",
                    backingFile=got.backing,
                )
            if got.format != "qcow2":
                await qemu_img.to_qcow2(part, converted, got.format)
                await asyncio.to_thread(os.replace, converted, part)
            final = await qemu_img.info(part)
            await asyncio.to_thread(_publish, part, dest)
        except BaseException:
            await asyncio.to_thread(_unlink, part, converted)
            raise
        return Downloaded(got.format, final.virtual_size, final.actual_size)

    async def _client_key(self, source: SftpSource) -> asyncssh.SSHKey:
        text = source.key
        if not text:
            try:
                text = await asyncio.to_thread(self.key_file.read_text, encoding="utf-8")
            except OSError as exc:
                raise AgentCommandError(
                    f"cannot copy {source.url()}: the command has no sshKey and the agent's "
                    f"key file {self.key_file} cannot be read ({exc.strerror})",
                    keyFile=str(self.key_file),
                ) from None
        try:
            return asyncssh.import_private_key(text)
        except (asyncssh.KeyImportError, ValueError) as exc:
            raise AgentCommandError(
                f"cannot copy {source.url()}: the SSH key is not a private key ({exc})"
            ) from None

    async def _known_hosts(self, source: SftpSource) -> asyncssh.SSHKnownHosts | None:
        if not self.known_hosts:
            return None  # host key checking off, as the operator chose
        try:
            text = await asyncio.to_thread(Path(self.known_hosts).read_text, encoding="utf-8")
        except OSError as exc:
            raise AgentCommandError(
                f"cannot copy {source.url()}: the known hosts file {self.known_hosts} cannot "
                f"be read ({exc.strerror}); add the backup storage's host key to it",
                knownHosts=self.known_hosts,
            ) from None
        return asyncssh.import_known_hosts(text)

    async def _sftp(self, source: SftpSource, part: str) -> None:
        key = await self._client_key(source)
        known_hosts = await self._known_hosts(source)
        try:
            async with (
                asyncssh.connect(
                    source.hostname,
                    port=source.port,
                    username=source.username,
                    client_keys=[key],
                    known_hosts=known_hosts,
                    agent_path=None,
                    config=[],
                    connect_timeout=CONNECT_TIMEOUT_S,
                ) as conn,
                conn.start_sftp_client() as sftp,
                sftp.open(source.path, "rb") as remote,
            ):
                await _copy(remote.read, part)
        except (OSError, asyncssh.Error) as exc:
            reason = getattr(exc, "reason", None) or str(exc) or type(exc).__name__
            raise AgentCommandError(
                f"cannot copy {source.url()}: {reason}",
                hostname=source.hostname,
                sshPort=source.port,
                backupStorageInstallPath=source.path,
            ) from None


async def _copy(read: Callable[[int], Awaitable[bytes]], part: str) -> None:
    out: BinaryIO = await asyncio.to_thread(open, part, "xb")
    try:
        while chunk := await read(CHUNK):
            await asyncio.to_thread(out.write, chunk)
        await asyncio.to_thread(os.fsync, out.fileno())
    finally:
        await asyncio.to_thread(out.close)


def _publish(part: str, dest: str) -> None:
    os.chmod(part, 0o644)  # a backing file qemu (another user) must read
    os.replace(part, dest)


def _clear_leftovers(directory: str, prefix: str) -> None:
    """Make ``directory``; drop what an earlier try that died (SIGKILL, power loss) left
    (the node's cache queue runs one download of a file at a time)."""
    os.makedirs(directory, exist_ok=True)
    for entry in os.scandir(directory):
        if entry.name.startswith(prefix):
            _unlink(entry.path)


def _unlink(*paths: str) -> None:
    for path in paths:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
