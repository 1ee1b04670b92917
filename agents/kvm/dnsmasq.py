"""The dnsmasq processes that serve DHCP and DNS on the bridges: one per bridge with DHCP
entries, a child of the agent (started in ``netns``, stopped with the agent), reading the
files ``netrender.render_dnsmasq`` writes. A bridge whose files changed gets SIGHUP (dnsmasq
reads its hosts, options and names again); one whose address ranges changed is started
again; one with no entry left is stopped.

dnsmasq answers DHCP only on a bridge that holds an address in the guests' network (the
KVM host's address on it, or the gateway's): ``--bind-dynamic`` lets it start before the
bridge exists or has one. DNS: the guests' names only (``--no-resolv``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from dataclasses import dataclass
from pathlib import Path

from agents.runtime import AgentCommandError

log = logging.getLogger(__name__)

# How long a new dnsmasq has to die of a bad setting before it counts as started.
START_CHECK_S = 0.3
STOP_TIMEOUT_S = 5.0


@dataclass(slots=True)
class _Running:
    proc: asyncio.subprocess.Process
    ranges: tuple[str, ...]


class Dnsmasq:
    def __init__(self, conf_dir: Path, run_dir: Path, netns: str = "", binary: str = "dnsmasq"):
        self.conf_dir, self.run_dir, self.binary = conf_dir, run_dir, binary
        self.prefix: tuple[str, ...] = ("ip", "netns", "exec", netns) if netns else ()
        self._running: dict[str, _Running] = {}

    def argv(self, bridge: str, ranges: tuple[str, ...]) -> list[str]:
        conf, run = self.conf_dir, self.run_dir
        return [
            *self.prefix,
            self.binary,
            "--keep-in-foreground",
            "--conf-file=/dev/null",  # the host's /etc/dnsmasq.conf is not ours
            # It rereads its files on SIGHUP, in the agent's state directory, which need
            # not be open to other users: it keeps the agent's user (root, as ZStack's).
            "--user=root",
            "--no-hosts",
            "--no-resolv",
            f"--interface={bridge}",
            "--bind-dynamic",
            "--dhcp-authoritative",
            f"--dhcp-hostsfile={conf / f'{bridge}.hosts'}",
            f"--dhcp-optsfile={conf / f'{bridge}.opts'}",
            f"--addn-hosts={conf / f'{bridge}.dns'}",
            f"--dhcp-leasefile={run / f'{bridge}.leases'}",
            f"--pid-file={run / f'{bridge}.pid'}",
            f"--log-facility={run / f'{bridge}.log'}",
            *(f"--dhcp-range={r}" for r in ranges),
        ]

    async def sync(self, wanted: dict[str, tuple[str, ...]], changed_files: list[str]) -> None:
        """Bring the processes to ``wanted`` (bridge -> its ``--dhcp-range`` values)."""
        touched = {name.rsplit(".", 1)[0] for name in changed_files}
        for bridge in sorted(set(self._running) - set(wanted)):
            await self._stop(bridge)
        for bridge, ranges in sorted(wanted.items()):
            running = self._running.get(bridge)
            if running is not None and running.proc.returncode is None:
                if running.ranges == ranges:
                    if bridge in touched:
                        running.proc.send_signal(signal.SIGHUP)
                    continue
                await self._stop(bridge)
            await self._start(bridge, ranges)

    async def _start(self, bridge: str, ranges: tuple[str, ...]) -> None:
        await asyncio.to_thread(self.run_dir.mkdir, parents=True, exist_ok=True)
        log_file = self.run_dir / f"{bridge}.start.log"
        argv = self.argv(bridge, ranges)
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
                f"dnsmasq did not start on {bridge}: {message or proc.returncode}",
                bridge=bridge,
                exitCode=proc.returncode,
                stderr=message,
            )
        self._running[bridge] = _Running(proc, ranges)
        log.info("dnsmasq serving %s (%s), pid %d", bridge, ", ".join(ranges), proc.pid)

    async def _stop(self, bridge: str) -> None:
        running = self._running.pop(bridge, None)
        if running is None or running.proc.returncode is not None:
            return
        running.proc.terminate()
        try:
            await asyncio.wait_for(running.proc.wait(), STOP_TIMEOUT_S)
        except TimeoutError:
            running.proc.kill()
            await running.proc.wait()

    async def stop_all(self) -> None:
        for bridge in sorted(self._running):
            await self._stop(bridge)

    def pid(self, bridge: str) -> int | None:
        """The running dnsmasq of ``bridge`` (for tests and logs)."""
        running = self._running.get(bridge)
        if running is None or running.proc.returncode is not None:
            return None
        return running.proc.pid
