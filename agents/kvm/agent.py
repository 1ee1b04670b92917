"""The KVM agent: one ``AgentRuntime`` on its own HTTP port, serving the commands of
``host_commands``, ``vm_commands`` and ``storage_commands`` through libvirt.

The token is read from ``token_file``. A request whose token does not match makes the
agent look at the file again (and read it if it changed), so a deployment that installs
a new token needs no restart.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

from aiohttp import web

from agents.kvm.config import AgentConfig, read_token
from agents.kvm.downloads import ImageDownloader
from agents.kvm.events import VmStateReporter, start_libvirt_event_loop
from agents.kvm.host_commands import HostCommands, HostState
from agents.kvm.hypervisor import Hypervisor
from agents.kvm.journal import FileJournal
from agents.kvm.network_commands import NetworkCommands
from agents.kvm.storage_commands import StorageCommands
from agents.kvm.vm_commands import VmCommands
from agents.runtime import AgentRuntime, AgentServer
from agents.runtime.protocol import AUTHORIZATION, bearer_matches

log = logging.getLogger(__name__)


class KvmAgentRuntime(AgentRuntime):
    """The runtime, plus reading the token file again when a request's token differs
    and the file changed since it was last read."""

    __slots__ = ("_config", "_token_stamp")

    def __init__(self, config: AgentConfig, journal: FileJournal) -> None:
        super().__init__(journal=journal)
        self._config = config
        self._token_stamp: tuple[int, int] | None = None  # (mtime ns, size) last read

    async def reload_token(self) -> None:
        stamp, token = await asyncio.to_thread(_read_token_file, self._config.token_file)
        self._token_stamp = stamp
        if token is not None:
            self.install_token(token)

    async def dispatch(self, request: web.Request, path: str) -> web.Response:
        header = request.headers.get(AUTHORIZATION)
        if header and not bearer_matches(header, self._token):
            stamp = await asyncio.to_thread(_stamp, self._config.token_file)
            if stamp != self._token_stamp:
                await self.reload_token()
        return await super().dispatch(request, path)


def _stamp(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return st.st_mtime_ns, st.st_size


def _read_token_file(path: Path) -> tuple[tuple[int, int] | None, str | None]:
    return _stamp(path), read_token(path)


class KvmAgent:
    """``start`` opens libvirt, reads the token and the task journal and serves;
    ``stop`` undoes it. ``port`` is the bound port."""

    def __init__(self, config: AgentConfig) -> None:
        self.config = config
        self.journal = FileJournal(config.state_dir / "tasks.jsonl")
        self.runtime = KvmAgentRuntime(config, self.journal)
        self.runtime.send_command_url = config.send_command_url
        self.state = HostState(host_uuid=config.host_uuid)
        self.hv = Hypervisor(config.libvirt_uri, threads=config.libvirt_threads)
        self.reporter = VmStateReporter(self.runtime, self.state)
        self.hv.on_open.append(self.reporter.subscribe)
        HostCommands(self.runtime, self.hv, config, self.state).register()
        VmCommands(self.runtime, self.hv, config).register()
        downloader = ImageDownloader(config.sftp_key_file, config.sftp_known_hosts)
        StorageCommands(self.runtime, self.hv, downloader).register()
        # libvirt's test driver runs no guest: its host's own rules are left alone unless
        # a namespace is named for them.
        dry = config.libvirt_uri.startswith("test:") and not config.netns
        self.network = NetworkCommands(
            self.runtime,
            config.state_dir,
            config.netns,
            dry=dry,
        )
        self.network.register()
        self.server = AgentServer(self.runtime)
        self._reporting: asyncio.Task[None] | None = None

    @property
    def port(self) -> int:
        return self.server.port

    async def start(self) -> None:
        await asyncio.to_thread(start_libvirt_event_loop)
        self.reporter.bind(asyncio.get_running_loop())
        await self.hv.open()
        await self.journal.load()
        await self.network.load()
        await self.runtime.reload_token()
        if not self.runtime.has_token:
            log.warning(
                "no token in %s yet: every request is refused until the node's "
                "deployment installs one",
                self.config.token_file,
            )
        self._reporting = asyncio.get_running_loop().create_task(self.reporter.run())
        await self.server.start(self.config.host, self.config.port)
        log.info(
            "KVM agent on %s:%d, libvirt %s", self.config.host, self.port, self.config.libvirt_uri
        )

    async def stop(self) -> None:
        await self.server.stop()
        await self.network.close()
        if self._reporting is not None:
            self._reporting.cancel()
            await asyncio.gather(self._reporting, return_exceptions=True)
        await self.hv.close()


async def serve(config: AgentConfig, ready: Any = None) -> None:
    """Run the agent until cancelled (SIGTERM/SIGINT in ``__main__``)."""
    agent = KvmAgent(config)
    await agent.start()
    try:
        if ready is not None:
            ready(agent)
        await asyncio.Event().wait()
    finally:
        await agent.stop()
