"""The metadata server: what guests read at http://169.254.169.254/ (their userdata, their
uuid and host name), redirected there by the agent's nat rules (``netrender.py``).

It serves the files ``netrender.render_userdata`` lays out, ``<root>/<guest address>/...``,
to the guest whose address the request comes from (a redirect keeps the source address):
a guest reads its own files only. A directory answers the list of its entries, one a line
(sub-directories with a trailing ``/``), as EC2's metadata service does.

It listens in the network namespace the rules go in (``netns``): its socket is made by a
thread of its own that enters the namespace (setns) and leaves it; the socket stays there.
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


def _bound(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # Every address: the redirect sends guests to their bridge's own address; the
        # filter guard (``zs-md``) drops what was not sent to 169.254.169.254.
        sock.bind(("0.0.0.0", port))  # noqa: S104
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


def _listen_in(netns: str, port: int) -> socket.socket:
    """A listening socket in ``netns`` (the agent's own namespace for ""). Blocks: called
    through ``asyncio.to_thread``; the namespace is entered by a thread made for it, so
    no pooled thread is ever left in another namespace."""
    if not netns:
        return _bound(port)
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
                    made.append(_bound(port))
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
    """Started by the first command that leaves a VM with userdata on the host (or by the
    agent's start, when its kept state has some); stopped with the agent."""

    def __init__(self, root: Path, port: int, netns: str = "") -> None:
        self.root, self.netns, self._port = root, netns, port
        self._runner: web.AppRunner | None = None
        self._lock = asyncio.Lock()

    @property
    def port(self) -> int:
        return self._port

    async def start(self) -> int:
        """Listen (once); the bound port."""
        async with self._lock:
            if self._runner is not None:
                return self._port
            sock = await asyncio.to_thread(_listen_in, self.netns, self._port)
            self._port = sock.getsockname()[1]
            app = web.Application()
            app.router.add_get("/{path:.*}", self._serve)
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            await web.SockSite(runner, sock).start()
            self._runner = runner
            log.info("metadata server on port %d (netns %r)", self._port, self.netns or "host")
            return self._port

    async def stop(self) -> None:
        async with self._lock:
            if self._runner is not None:
                await self._runner.cleanup()
                self._runner = None

    async def _serve(self, request: web.Request) -> web.Response:
        guest = request.remote or ""
        body = await asyncio.to_thread(read_for, self.root, guest, request.match_info["path"])
        if body is None:
            raise web.HTTPNotFound()
        return web.Response(body=body, content_type="text/plain")
