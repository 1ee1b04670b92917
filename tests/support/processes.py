"""Running ``zstackpy`` as a real process from tests, without blocking the event loop."""

from __future__ import annotations

import asyncio
import os
import re
import sys
from collections.abc import Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from simulator.stress.processes import free_port

REPO = Path(__file__).resolve().parents[2]
_READY = re.compile(rb"management node ([0-9a-f]{32}) ready at http://[^:]+:(\d+)/health")


def node_env(**settings: str) -> dict[str, str]:
    """The parent's environment minus its ZSTACK_* settings, plus ``settings``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ZSTACK_")}
    env["PYTHONPATH"] = str(REPO)
    env.update(settings)
    return env


async def run_cli(*args: str, env: Mapping[str, str], timeout: float = 60) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "zstackpy",
        *args,
        env=dict(env),
        cwd=REPO,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


@dataclass
class NodeProcess:
    proc: asyncio.subprocess.Process
    uuid: str
    port: int
    log: Path

    async def kill(self) -> None:
        if self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()

    async def terminate(self, timeout: float = 15) -> int:
        if self.proc.returncode is None:
            self.proc.terminate()
            try:
                await asyncio.wait_for(self.proc.wait(), timeout)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()
        assert self.proc.returncode is not None
        return self.proc.returncode


async def start_node_process(
    env: Mapping[str, str], log: Path, *args: str, timeout: float = 60
) -> NodeProcess:
    """Start ``zstackpy run --port 0`` and wait for its ready line (stderr goes to ``log``)."""
    with log.open("wb") as log_file:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "zstackpy",
            "run",
            "--port",
            "0",
            *args,
            env=dict(env),
            cwd=REPO,
            stdout=asyncio.subprocess.PIPE,
            stderr=log_file,
        )
    assert proc.stdout is not None
    # The first start may print the generated admin password before the ready line.
    seen: list[bytes] = []
    match = None
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while match is None:
        try:
            line = await asyncio.wait_for(proc.stdout.readline(), deadline - loop.time())
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise AssertionError(
                f"node did not start in {timeout}s; log:\n{log.read_text()}"
            ) from None
        if not line:
            await proc.wait()
            raise AssertionError(f"node failed to start ({seen!r}); log:\n{log.read_text()}")
        seen.append(line)
        match = _READY.search(line)
    return NodeProcess(proc, match.group(1).decode(), int(match.group(2)), log)


async def simulator_process(stack: AsyncExitStack, log: Path | None = None) -> str:
    """``python -m simulator`` on a free port, stopped with ``stack``; its URL. Output goes
    to ``log`` when given."""
    port = free_port()
    out: IO[bytes] | None = None
    if log is not None:
        out = log.open("wb")
        stack.callback(out.close)
    sim = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "simulator", "--port", str(port), "--log-level", "WARNING",
        cwd=REPO, stdout=out, stderr=out,
    )  # fmt: skip

    async def stop() -> None:
        sim.terminate()
        await sim.wait()

    stack.push_async_callback(stop)
    return f"http://127.0.0.1:{port}"
