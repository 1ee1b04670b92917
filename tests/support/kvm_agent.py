"""The real KVM agent (``python -m agents.kvm``) as a process, for tests: on libvirt's
``test:///default`` driver (no hypervisor), at a loopback address of its own on the
agent's real port 7070, with its files where ``ansible/kvm-agent.yml`` puts them under a
test prefix."""

from __future__ import annotations

import asyncio
import random
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agents.kvm.agent import KvmAgent
from agents.kvm.config import AgentConfig
from tests.support.agent_caller import AgentCaller
from tests.support.processes import REPO, node_env

KVM_PORT = 7070
TEST_LIBVIRT_URI = "test:///default"


def random_loopback() -> str:
    """A loopback address few others use, so port 7070 on it is free."""
    rnd = random.SystemRandom()
    return f"127.{rnd.randint(1, 254)}.{rnd.randint(0, 255)}.{rnd.randint(1, 254)}"


def prefix_paths(prefix: Path) -> tuple[Path, Path]:
    """(token file, state dir) as the playbook lays them out under ``prefix``."""
    return (
        prefix / "etc" / "zstackpy" / "kvm-agent.token",
        prefix / "var" / "lib" / "zstackpy" / "kvm-agent",
    )


@dataclass
class KvmAgentProcess:
    address: str
    prefix: Path
    log: Path
    libvirt_uri: str = TEST_LIBVIRT_URI
    proc: asyncio.subprocess.Process | None = field(default=None, repr=False)

    @property
    def base_url(self) -> str:
        return f"http://{self.address}:{KVM_PORT}"

    async def start(self, timeout: float = 30) -> None:
        token_file, state_dir = prefix_paths(self.prefix)
        with self.log.open("ab") as log_file:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "agents.kvm",
                "--host",
                self.address,
                "--port",
                str(KVM_PORT),
                "--libvirt-uri",
                self.libvirt_uri,
                "--token-file",
                str(token_file),
                "--state-dir",
                str(state_dir),
                env=node_env(),
                cwd=REPO,
                stdout=asyncio.subprocess.PIPE,
                stderr=log_file,
            )
        assert self.proc.stdout is not None
        try:
            line = await asyncio.wait_for(self.proc.stdout.readline(), timeout)
        except TimeoutError:
            line = b""
        if b"KVM agent ready" not in line:
            await self.kill()
            raise AssertionError(f"the KVM agent did not start; log:\n{self.log.read_text()}")

    async def kill(self) -> None:
        """SIGKILL: the agent ends mid-whatever, as in a crash."""
        if self.proc is not None and self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()

    async def stop(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.terminate()
            try:
                await asyncio.wait_for(self.proc.wait(), 10)
            except TimeoutError:
                await self.kill()


class InProcessAgent:
    """The KVM agent in this test's process (libvirt's test driver, port 0), and a
    callback server: ``await call(path, body)`` POSTs a command as the node does and
    returns the result the agent calls back with."""

    TOKEN = "in-process-test-token"

    def __init__(self, tmp: Path, **settings: object) -> None:
        token_file = tmp / "agent" / "kvm-agent.token"
        token_file.parent.mkdir(parents=True, exist_ok=True)
        token_file.write_text(self.TOKEN)
        self.config = AgentConfig(
            host="127.0.0.1",
            port=0,
            libvirt_uri=TEST_LIBVIRT_URI,
            token_file=token_file,
            state_dir=tmp / "agent" / "state",
        ).with_overrides(dict(settings))
        self.caller = AgentCaller(self.TOKEN)

    async def __aenter__(self) -> InProcessAgent:
        self.agent = KvmAgent(self.config)
        await self.agent.start()
        await self.caller.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.caller.close()
        await self.agent.stop()

    async def call(self, path: str, body: dict[str, Any], timeout: float = 60) -> dict[str, Any]:
        return await self.caller.call(self.agent.port, path, body, timeout)
