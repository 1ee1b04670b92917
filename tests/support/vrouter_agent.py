"""The appliance agent (``python -m agents.vrouter``) as a process, for tests: on port 0
of 127.0.0.1, applying everything inside a network namespace the test made, and a
callback server: ``await call(path, body)`` POSTs a command as the node does and returns
the result the agent calls back with."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.support.agent_caller import AgentCaller
from tests.support.processes import REPO, node_env

TOKEN = "vrouter-test-token"


def in_ns(ns: str, *argv: str) -> str:
    return subprocess.run(
        ["ip", "netns", "exec", ns, *argv], check=True, capture_output=True, text=True
    ).stdout


class RouterAgentProcess:
    def __init__(self, tmp: Path, netns: str) -> None:
        self.tmp, self.netns = tmp, netns
        self.state_dir = tmp / "state"
        self.token_file = tmp / "vrouter-agent.token"
        self.token_file.write_text(TOKEN)
        self.log = tmp / "agent.log"
        self.proc: asyncio.subprocess.Process | None = None
        self.port = 0
        self.caller = AgentCaller(TOKEN)

    async def __aenter__(self) -> RouterAgentProcess:
        await self.caller.start()
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
        await self.caller.close()
        self.end_daemons()

    async def start(self) -> None:
        with self.log.open("ab") as log_file:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "agents.vrouter",
                "--host",
                "127.0.0.1",
                "--port",
                "0",
                "--token-file",
                str(self.token_file),
                "--state-dir",
                str(self.state_dir),
                "--netns",
                self.netns,
                env=node_env(),
                cwd=REPO,
                stdout=asyncio.subprocess.PIPE,
                stderr=log_file,
            )
        assert self.proc.stdout is not None
        try:
            line = await asyncio.wait_for(self.proc.stdout.readline(), 30)
        except TimeoutError:
            line = b""
        if b"agent ready on" not in line:
            await self.stop()
            raise AssertionError(f"the agent did not start; log:\n{self.log.read_text()}")
        self.port = int(line.decode().strip().rsplit(":", 1)[1])

    async def stop(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.terminate()
            try:
                await asyncio.wait_for(self.proc.wait(), 10)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()

    def daemon_pid(self, name: str) -> int | None:
        """The pid of the agent's dnsmasq or haproxy, if it runs."""
        try:
            pid = int((self.state_dir / "run" / f"{name}.pid").read_text().split()[0])
        except (FileNotFoundError, ValueError, IndexError):
            return None
        return pid if Path(f"/proc/{pid}").exists() else None

    def end_daemons(self) -> None:
        # The daemons outlive the agent by design; the test ends the ones its agent started.
        for name in ("dnsmasq", "haproxy"):
            pid = self.daemon_pid(name)
            if pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGTERM)

    async def call(self, path: str, body: dict[str, Any], timeout: float = 60) -> dict[str, Any]:
        return await self.caller.call(self.port, path, body, timeout)

    async def post(self, path: str, body: dict[str, Any], token: str = TOKEN) -> tuple[int, Any]:
        """A sync POST: the status and the JSON answer."""
        headers = {"Authorization": f"Bearer {token}"}
        url = f"http://127.0.0.1:{self.port}{path}"
        async with self.caller.http.post(url, json=body, headers=headers) as answer:
            return answer.status, await answer.json()
