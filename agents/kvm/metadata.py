"""The metadata server: what guests read at http://169.254.169.254/ (their userdata, their
uuid and host name).

It listens on 169.254.169.254:80 inside the namespace of each L3 network whose guests have
userdata on this host (``dhcpns.py``; the namespace holds that address, guests route to it
through the DHCP server), one listener per network, no redirect: the request arrives with
the guest's own address. Each listener serves the files ``netrender.render_userdata``
lays out for its network, ``<root>/<L3 uuid>/<guest address>/...``, to the guest whose
address the request comes from: a guest reads its own files only. A directory answers
the list of its entries, one a line (sub-directories with a trailing ``/``), as EC2's
metadata service does.

A listener's socket is made by a thread of its own that enters the namespace (setns)
and leaves it; the socket stays there.
"""

from __future__ import annotations

import asyncio
import ctypes
import ipaddress
import logging
import socket
import threading
from pathlib import Path

from aiohttp import web

log = logging.getLogger(__name__)

_CLONE_NEWNET = 0x40000000


METADATA_PORT = 80


def _bound(address: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((address, port))
        sock.listen(128)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


def _setns(libc: ctypes.CDLL, fd: int) -> None:
    if libc.setns(fd, _CLONE_NEWNET) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"setns failed: {errno}")


def _listen_in(netns: str, address: str, port: int) -> socket.socket:
    """A listening socket in ``netns`` (the agent's own namespace for ""). Blocks: called
    through ``asyncio.to_thread``; the namespace is entered by a thread made for it, so
    no pooled thread is ever left in another namespace."""
    if not netns:
        return _bound(address, port)
    made: list[socket.socket] = []
    failed: list[BaseException] = []

    def enter_and_bind() -> None:
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            with (
                open("/proc/thread-self/ns/net", "rb") as own,
                open(f"/var/run/netns/{netns}", "rb") as target,
            ):
                _setns(libc, target.fileno())
                try:
                    made.append(_bound(address, port))
                finally:
                    _setns(libc, own.fileno())
        except BaseException as exc:
            failed.append(exc)

    thread = threading.Thread(target=enter_and_bind, name=f"metadata-netns-{netns}")
    thread.start()
    thread.join()
    if failed:
        raise failed[0]
    return made[0]


def read_for(root: Path, guest: str, path: str) -> bytes | None:
    """What ``guest`` reads at ``path``; None when there is nothing (or not its own)."""
    try:
        ipaddress.IPv4Address(guest)
    except ValueError:
        return None
    base = (root / guest).resolve()
    target = (base / path.lstrip("/")).resolve()
    if not target.is_relative_to(base):
        return None  # ``..`` and links out of the guest's directory
    if target.is_dir():
        names = sorted(f"{p.name}/" if p.is_dir() else p.name for p in target.iterdir())
        return "".join(f"{n}\n" for n in names).encode()
    if target.is_file():
        return target.read_bytes()
    return None


class MetadataServer:
    """The listeners, by L3 network: ``sync`` opens those of the namespaces that need one
    and closes the others; all close with the agent."""

    def __init__(self, root: Path, address: str = "169.254.169.254", port: int = METADATA_PORT):
        self.root, self.address, self.port = root, address, port
        self._runners: dict[str, tuple[str, web.AppRunner]] = {}  # l3 -> (netns, runner)

    def listening(self) -> dict[str, str]:
        """L3 uuid -> the namespace its listener is in."""
        return {l3: netns for l3, (netns, _) in self._runners.items()}

    async def sync(self, wanted: dict[str, str], restart: set[str]) -> None:
        """Listen for each L3 of ``wanted`` (L3 uuid -> namespace) and nowhere else; a
        listener whose namespace is in ``restart`` (made again: the old socket is in the
        namespace that went) listens anew."""
        for l3 in sorted(self._runners):
            if l3 not in wanted or self._runners[l3][0] != wanted[l3] or wanted[l3] in restart:
                await self.close(l3)
        for l3, netns in sorted(wanted.items()):
            if l3 not in self._runners:
                await self._listen(l3, netns)

    async def _listen(self, l3: str, netns: str) -> None:
        sock = await asyncio.to_thread(_listen_in, netns, self.address, self.port)
        app = web.Application()
        base = self.root / l3

        async def serve(request: web.Request) -> web.Response:
            guest = request.remote or ""
            body = await asyncio.to_thread(read_for, base, guest, request.match_info["path"])
            if body is None:
                raise web.HTTPNotFound()
            return web.Response(body=body, content_type="text/plain")

        app.router.add_get("/{path:.*}", serve)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        try:
            await web.SockSite(runner, sock).start()
        except BaseException:
            await runner.cleanup()
            sock.close()
            raise
        self._runners[l3] = (netns, runner)
        log.info("metadata server for L3 %s on %s:%d in %s", l3, self.address, self.port, netns)

    async def close(self, l3: str) -> None:
        held = self._runners.pop(l3, None)
        if held is not None:
            await held[1].cleanup()

    async def stop(self) -> None:
        for l3 in sorted(self._runners):
            await self.close(l3)
