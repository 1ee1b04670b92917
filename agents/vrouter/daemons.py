"""dnsmasq and haproxy as daemons of the appliance, found again by their pid files (they
outlive an agent restart: the data plane does not stop with the agent).

A pid file counts only if its process still runs with this daemon's configuration file
on its command line, so a recycled pid is never signalled."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from pathlib import Path

from agents.vrouter.system import Shell


def _pid(pid_file: Path, conf: Path) -> int | None:
    try:
        pid = int(pid_file.read_text(encoding="utf-8").split()[0])
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (FileNotFoundError, ValueError, IndexError, ProcessLookupError):
        return None
    return pid if str(conf).encode() in cmdline else None


def _write(path: Path, text: str) -> bool:
    """Atomically; False when it held ``text`` already."""
    with contextlib.suppress(FileNotFoundError):
        if path.read_text(encoding="utf-8") == text:
            return False
    path.parent.mkdir(parents=True, exist_ok=True)
    part = path.with_name(f".{path.name}.part")
    part.write_text(text, encoding="utf-8")
    os.replace(part, path)
    return True


async def _stop(pid: int) -> None:
    """SIGTERM, and SIGKILL if it still runs 5 s later."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    for _ in range(100):
        if not os.path.exists(f"/proc/{pid}"):  # noqa: ASYNC240 -- procfs: never blocks
            return
        await asyncio.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


class Daemon:
    """One daemon with one configuration file. ``ensure(text)`` makes it run with that
    configuration (started, reloaded or left alone); ``ensure(None)`` stops it."""

    def __init__(self, shell: Shell, program: str, conf: Path, pid_file: Path) -> None:
        self.shell, self.program, self.conf, self.pid_file = shell, program, conf, pid_file

    def pid(self) -> int | None:
        return _pid(self.pid_file, self.conf)

    async def ensure(self, text: str | None, *, files_changed: bool = False) -> str:
        """What happened: ``started``, ``reloaded``, ``stopped`` or ``unchanged``."""
        pid = await asyncio.to_thread(self.pid)
        if text is None:
            if pid is None:
                return "unchanged"
            await _stop(pid)
            return "stopped"
        if not self.program:
            await asyncio.to_thread(_write, self.conf, text)
            return "rendered"
        changed = await asyncio.to_thread(_write, self.conf, text)
        if pid is None:
            await self.start()
            return "started"
        if changed or files_changed:
            await self.reload(pid, conf_changed=changed)
            return "reloaded"
        return "unchanged"

    async def check(self, text: str | None) -> None:
        """AgentCommandError for a configuration the program would not run with."""
        if text is None or not self.program:
            return
        candidate = self.conf.with_name(f".{self.conf.name}.check")
        await asyncio.to_thread(_write, candidate, text)
        await self.shell.run(*self.check_argv(candidate), in_ns=False)

    def check_argv(self, conf: Path) -> tuple[str, ...]:
        raise NotImplementedError

    async def start(self) -> None:
        raise NotImplementedError

    async def reload(self, pid: int, *, conf_changed: bool) -> None:
        raise NotImplementedError


class Dnsmasq(Daemon):
    def check_argv(self, conf: Path) -> tuple[str, ...]:
        return (self.program, "--test", f"--conf-file={conf}")

    async def start(self) -> None:
        # dnsmasq forks once it serves; a failure to bind or read its files ends it first.
        await self.shell.run(self.program, f"--conf-file={self.conf}")

    async def reload(self, pid: int, *, conf_changed: bool) -> None:
        if conf_changed:  # SIGHUP rereads the hosts and options files, not the configuration
            await _stop(pid)
            await self.start()
        else:
            os.kill(pid, signal.SIGHUP)


class Haproxy(Daemon):
    def check_argv(self, conf: Path) -> tuple[str, ...]:
        return (self.program, "-c", "-q", "-f", str(conf))

    async def start(self) -> None:
        await self.shell.run(self.program, "-D", "-f", str(self.conf), "-p", str(self.pid_file))

    async def reload(self, pid: int, *, conf_changed: bool) -> None:
        # A new haproxy takes the sockets over and tells the old one to finish (-sf).
        await self.shell.run(
            self.program, "-D", "-f", str(self.conf), "-p", str(self.pid_file), "-sf", str(pid)
        )
