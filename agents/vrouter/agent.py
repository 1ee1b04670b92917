"""The appliance agent: one ``AgentRuntime`` on port 7272 serving ``RouterCommands``,
with the KVM agent's task journal (``agents/kvm/journal.py``).

The token is read from ``token_file`` at start, and again when a request carries
another token and the file changed since (the image's boot installs a router's token;
no restart needed)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path

from aiohttp import web

from agents.kvm.config import read_token
from agents.kvm.journal import FileJournal
from agents.runtime import AgentRuntime, AgentServer
from agents.runtime.protocol import AUTHORIZATION, bearer_matches
from agents.vrouter.commands import RouterCommands
from agents.vrouter.config import RouterConfig

log = logging.getLogger(__name__)


def _mtime(path: Path) -> int | None:
    try:
        return path.stat().st_mtime_ns
    except FileNotFoundError:
        return None


class RouterRuntime(AgentRuntime):
    __slots__ = ("_read_at", "_token_file")

    def __init__(self, token_file: Path, journal: FileJournal) -> None:
        super().__init__(journal=journal)
        self._token_file = token_file
        self._read_at: int | None = None

    async def read_token(self) -> None:
        self._read_at = await asyncio.to_thread(_mtime, self._token_file)
        token = await asyncio.to_thread(read_token, self._token_file)
        if token is not None:
            self.install_token(token)

    async def dispatch(self, request: web.Request, path: str) -> web.Response:
        header = request.headers.get(AUTHORIZATION)
        if (
            header
            and not bearer_matches(header, self._token)
            and await asyncio.to_thread(_mtime, self._token_file) != self._read_at
        ):
            await self.read_token()
        return await super().dispatch(request, path)


class RouterAgent:
    def __init__(self, config: RouterConfig) -> None:
        self.config = config
        self.journal = FileJournal(config.state_dir / "tasks.jsonl")
        self.runtime = RouterRuntime(config.token_file, self.journal)
        self.commands = RouterCommands(self.runtime, config)
        self.commands.register()
        self.server = AgentServer(self.runtime)

    @property
    def port(self) -> int:
        return self.server.port

    async def start(self) -> None:
        await self.journal.load()
        await self.commands.load()
        await self.commands.reapply()
        await self.runtime.read_token()
        if not self.runtime.has_token:
            log.warning("no token in %s yet: every request is refused", self.config.token_file)
        await self.server.start(self.config.host, self.config.port)
        log.info("virtual-router agent on %s:%d", self.config.host, self.port)

    async def stop(self) -> None:
        # dnsmasq, haproxy and the rules stay: the router keeps routing without its agent.
        await self.server.stop()


async def serve(config: RouterConfig, ready: Callable[[RouterAgent], None] | None = None) -> None:
    """Run the agent until cancelled."""
    agent = RouterAgent(config)
    await agent.start()
    try:
        if ready is not None:
            ready(agent)
        await asyncio.Event().wait()
    finally:
        await agent.stop()
