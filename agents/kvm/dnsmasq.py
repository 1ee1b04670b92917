"""The dnsmasq processes that serve DHCP and DNS: one per L3 network with DHCP entries on
this host, inside that network's namespace (``dhcpns.py``) on its veth end, a child of
the agent (stopped with it), reading the files ``netrender.render_dnsmasq`` writes. One
whose files changed gets SIGHUP (dnsmasq reads its hosts, options and names again); one
whose address ranges (or namespace) changed is started again; one with no entry left is
stopped. A dnsmasq left running by an agent that died without stopping it is found by
its pid file and stopped before a new one starts.

DNS: the guests' names only (``--no-resolv``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from dataclasses import dataclass
from pathlib import Path

from agents.runtime import AgentCommandError

log = logging.getLogger(__name__)

# How long a new dnsmasq has to die of a bad setting before it counts as started.
START_CHECK_S = 0.3
STOP_TIMEOUT_S = 5.0


@dataclass(frozen=True, slots=True)
class DnsmasqSpec:
    """Where one dnsmasq runs and what it hands out."""

    netns: str  # "": the agent's own
    interface: str
    ranges: tuple[str, ...]  # its ``--dhcp-range`` values


@dataclass(slots=True)
class _Running:
    proc: asyncio.subprocess.Process
    spec: DnsmasqSpec


class Dnsmasq:
    """The processes, by name (the stem of their files: the L3 network's uuid)."""

    def __init__(self, conf_dir: Path, run_dir: Path, binary: str = "dnsmasq"):
        self.conf_dir, self.run_dir, self.binary = conf_dir, run_dir, binary
        self._running: dict[str, _Running] = {}

    def argv(self, name: str, spec: DnsmasqSpec) -> list[str]:
        conf, run = self.conf_dir, self.run_dir
        prefix = ("ip", "netns", "exec", spec.netns) if spec.netns else ()
        return [
            *prefix,
            self.binary,
            "--keep-in-foreground",
            "--conf-file=/dev/null",  # the host's /etc/dnsmasq.conf is not ours
            # It rereads its files on SIGHUP, in the agent's state directory, which need
            # not be open to other users: it keeps the agent's user (root, as ZStack's).
            "--user=root",
            "--no-hosts",
            "--no-resolv",
            f"--interface={spec.interface}",
            "--bind-dynamic",
            "--dhcp-authoritative",
            f"--dhcp-hostsfile={conf / f'{name}.hosts'}",
            f"--dhcp-optsfile={conf / f'{name}.opts'}",
            f"--addn-hosts={conf / f'{name}.dns'}",
            f"--dhcp-leasefile={run / f'{name}.leases'}",
            f"--pid-file={run / f'{name}.pid'}",
            f"--log-facility={run / f'{name}.log'}",
            *(f"--dhcp-range={r}" for r in spec.ranges),
        ]

    async def sync(
        self, wanted: dict[str, DnsmasqSpec], changed_files: list[str], restart: set[str]
    ) -> None:
        """Bring the processes to ``wanted``; those in ``restart`` (their namespace was
        made again) start anew."""
        touched = {name.rsplit(".", 1)[0] for name in changed_files}
        for name in sorted(set(self._running) - set(wanted)):
            await self.stop(name)
        starting = []
        for name, spec in sorted(wanted.items()):
            running = self._running.get(name)
            if running is not None and running.proc.returncode is None:
                if running.spec == spec and name not in restart:
                    if name in touched:
                        running.proc.send_signal(signal.SIGHUP)
                    continue
                await self.stop(name)
            starting.append(self._start(name, spec))
        # Together: each start waits START_CHECK_S for its process to die of a bad
        # setting, which a host with many networks would otherwise wait once per network.
        results = await asyncio.gather(*starting, return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                raise result

    async def _start(self, name: str, spec: DnsmasqSpec) -> None:
        await asyncio.to_thread(self.run_dir.mkdir, parents=True, exist_ok=True)
        await _stop_orphan(self.run_dir / f"{name}.pid")
        log_file = self.run_dir / f"{name}.start.log"
        argv = self.argv(name, spec)
        try:
            with await asyncio.to_thread(log_file.open, "wb") as errors:
                proc = await asyncio.create_subprocess_exec(
                    *argv, stdin=asyncio.subprocess.DEVNULL, stdout=errors, stderr=errors
                )
        except FileNotFoundError:
            raise AgentCommandError(
                f"{argv[0]} is not installed on this host (Debian package "
                f"{'iproute2' if argv[0] == 'ip' else 'dnsmasq-base'})",
                missing=argv[0],
            ) from None
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(proc.wait(), START_CHECK_S)
        if proc.returncode is not None:
            message = (await asyncio.to_thread(log_file.read_text, errors="replace")).strip()
            raise AgentCommandError(
                f"dnsmasq did not start for {name}: {message or proc.returncode}",
                name=name,
                exitCode=proc.returncode,
                stderr=message,
            )
        self._running[name] = _Running(proc, spec)
        log.info(
            "dnsmasq serving %s in %s (%s), pid %d",
            name, spec.netns or "the host", ", ".join(spec.ranges), proc.pid,
        )  # fmt: skip

    async def stop(self, name: str) -> None:
        running = self._running.pop(name, None)
        if running is None or running.proc.returncode is not None:
            return
        running.proc.terminate()
        try:
            await asyncio.wait_for(running.proc.wait(), STOP_TIMEOUT_S)
        except TimeoutError:
            running.proc.kill()
            await running.proc.wait()

    async def stop_all(self) -> None:
        for name in sorted(self._running):
            await self.stop(name)

    def names(self) -> set[str]:
        return set(self._running)

    def pid(self, name: str) -> int | None:
        """The running dnsmasq ``name`` (for tests and logs)."""
        running = self._running.get(name)
        if running is None or running.proc.returncode is not None:
            return None
        return running.proc.pid


async def _stop_orphan(pid_file: Path) -> None:
    """Stop the dnsmasq that wrote ``pid_file`` if it still runs (its agent died without
    stopping it): it holds the DHCP port of its namespace. Another process that took the
    pid since is left alone (its command line names another pid file)."""
    try:
        pid = int((await asyncio.to_thread(pid_file.read_text)).strip())
        cmdline = await asyncio.to_thread(Path(f"/proc/{pid}/cmdline").read_bytes)
    except (FileNotFoundError, ProcessLookupError, ValueError):
        return
    if f"--pid-file={pid_file}".encode() not in cmdline.split(b"\0"):
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    for _ in range(50):
        if not await asyncio.to_thread(Path(f"/proc/{pid}").exists):
            return
        await asyncio.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
