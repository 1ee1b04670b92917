"""One libvirt connection, used off the event loop.

libvirt-python blocks: every call goes through ``Hypervisor.run`` into a small thread
pool, so the agent's loop keeps answering HTTP while libvirt works. A ``libvirtError``
becomes an ``AgentCommandError`` carrying libvirt's own message and codes, which is what
the node shows the operator. A connection that died (libvirtd restarted) is opened again
on the next call.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Concatenate, ParamSpec, TypeVar

import libvirt

from agents.runtime import AgentCommandError

log = logging.getLogger(__name__)

P = ParamSpec("P")
T = TypeVar("T")


def libvirt_error(exc: libvirt.libvirtError, doing: str) -> AgentCommandError:
    """The agent error for a libvirt failure while ``doing`` ("start vm 1a2b...")."""
    message = exc.get_error_message() or str(exc)
    return AgentCommandError(
        f"libvirt failed to {doing}: {message}",
        libvirtCode=exc.get_error_code(),
        libvirtDomain=exc.get_error_domain(),
        libvirtMessage=message,
    )


def is_missing(exc: libvirt.libvirtError) -> bool:
    """True for "no such domain / volume / pool / interface" (retried deletes succeed)."""
    return exc.get_error_code() in (
        libvirt.VIR_ERR_NO_DOMAIN,
        libvirt.VIR_ERR_NO_STORAGE_VOL,
        libvirt.VIR_ERR_NO_STORAGE_POOL,
        libvirt.VIR_ERR_NO_INTERFACE,
    )


class Hypervisor:
    """``open`` before use (it registers libvirt's event loop first, so lifecycle events
    can be subscribed to), ``close`` at the end."""

    def __init__(self, uri: str, *, threads: int = 4) -> None:
        self.uri = uri
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="libvirt")
        self._conn: libvirt.virConnect | None = None
        self._lock = threading.Lock()  # one (re)open at a time, from any worker
        # Run in a worker on each new connection (event subscriptions are per connection).
        self.on_open: list[Callable[[libvirt.virConnect], None]] = []

    async def open(self) -> None:
        await self.call("connect", _noop)

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            await asyncio.get_running_loop().run_in_executor(self._executor, _close, conn)
        # Waiting for the workers blocks: not on the loop.
        await asyncio.to_thread(self._executor.shutdown, True, cancel_futures=True)

    def conn(self) -> libvirt.virConnect:
        """The live connection; opens one when there is none (call from a worker)."""
        with self._lock:
            conn = self._conn
            if conn is not None and conn.isAlive():
                return conn
            try:
                conn = libvirt.open(self.uri)
            except libvirt.libvirtError as exc:
                raise libvirt_error(exc, f"connect to {self.uri}") from None
            for hook in self.on_open:
                hook(conn)
            self._conn = conn
            return conn

    async def call(
        self,
        doing: str,
        fn: Callable[Concatenate[libvirt.virConnect, P], T],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        """``fn(conn, *args)`` in a worker thread. A libvirtError it lets out becomes an
        AgentCommandError: "libvirt failed to <doing>: <libvirt's message>"."""

        def work() -> T:
            return fn(self.conn(), *args, **kwargs)

        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor, work)
        except libvirt.libvirtError as exc:
            raise libvirt_error(exc, doing) from None


def _noop(conn: libvirt.virConnect) -> None:
    pass


def _close(conn: Any) -> None:
    try:
        conn.close()
    except libvirt.libvirtError:
        log.debug("closing the libvirt connection failed", exc_info=True)
