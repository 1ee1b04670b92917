"""A simulator and an embedded management node as child processes (the driver's own
CPU stays out of the node's figures), plus /proc readings of a process."""

from __future__ import annotations

import asyncio
import os
import re
import socket
import sys
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import aiohttp

CLK_TCK = os.sysconf("SC_CLK_TCK")
_READY = re.compile(rb"management node ([0-9a-f]{32}) ready at http://[^:]+:(\d+)/health")
START_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 30.0  # then SIGKILL


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


@dataclass
class LocalNode:
    url: str  # http://127.0.0.1:<port>
    pid: int
    db_url: str
    simulator_url: str
    simulator_pid: int
    log: Path


def node_env(**settings: str) -> dict[str, str]:
    """This process's environment minus its ZSTACK_* settings, plus ``settings``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ZSTACK_")}
    env.update(settings)
    return env


async def _stop(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is not None:
        return
    proc.terminate()
    try:
        await asyncio.wait_for(proc.wait(), STOP_TIMEOUT_S)
    except TimeoutError:
        proc.kill()
        await proc.wait()


async def _wait_http(url: str, proc: asyncio.subprocess.Process, what: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + START_TIMEOUT_S
    async with aiohttp.ClientSession() as http:
        while True:
            if proc.returncode is not None:
                raise RuntimeError(f"{what} exited with {proc.returncode}")
            try:
                async with http.get(url) as resp:
                    if resp.status < 500:
                        return
            except aiohttp.ClientError:
                pass
            if loop.time() > deadline:
                raise RuntimeError(f"{what} did not answer {url} in {START_TIMEOUT_S:g} s")
            await asyncio.sleep(0.1)


@asynccontextmanager
async def embedded_node(
    workdir: Path, admin_password: str, *, call_timeout: float | None = None
) -> AsyncIterator[LocalNode]:
    """``python -m simulator`` and ``zstackpy run`` (SQLite, in-process bus) in
    ``workdir``; stopped (SIGTERM) on the way out."""
    async with AsyncExitStack() as stack:
        sim_port = free_port()
        sim_log = (workdir / "simulator.log").open("wb")
        stack.callback(sim_log.close)
        sim = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "simulator", "--port", str(sim_port), "--log-level", "WARNING",
            stdout=sim_log, stderr=sim_log,
        )  # fmt: skip
        stack.push_async_callback(_stop, sim)
        sim_url = f"http://127.0.0.1:{sim_port}"
        await _wait_http(f"{sim_url}/simulator/stats", sim, "the simulator")
        env = node_env(
            ZSTACK_DATA_DIR=str(workdir),
            ZSTACK_ADMIN_PASSWORD=admin_password,
            ZSTACK_SIMULATOR="1",
            ZSTACK_SIMULATOR_URL=sim_url,
            ZSTACK_LOG_LEVEL="WARNING",
            **({"ZSTACK_CALL_TIMEOUT": str(call_timeout)} if call_timeout else {}),
        )
        upgrade = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "zstackpy", "db", "upgrade", env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, err = await upgrade.communicate()
        if upgrade.returncode != 0:
            raise RuntimeError(f"zstackpy db upgrade failed: {err.decode()}{out.decode()}")
        log = workdir / "node.log"
        node_log = log.open("wb")
        stack.callback(node_log.close)
        node = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "zstackpy", "run", "--port", "0", env=env,
            stdout=asyncio.subprocess.PIPE, stderr=node_log,
        )  # fmt: skip
        stack.push_async_callback(_stop, node)
        port = await _ready_port(node, log)
        # Keep reading its stdout: a full pipe would block the node at its next print.
        drain = asyncio.create_task(_drain(node))
        stack.push_async_callback(_cancel, drain)
        db_url = f"sqlite+aiosqlite:///{workdir / 'zstack.db'}"
        yield LocalNode(f"http://127.0.0.1:{port}", node.pid, db_url, sim_url, sim.pid, log)


async def _ready_port(node: asyncio.subprocess.Process, log: Path) -> int:
    assert node.stdout is not None
    loop = asyncio.get_running_loop()
    deadline = loop.time() + START_TIMEOUT_S
    while True:
        try:
            line = await asyncio.wait_for(node.stdout.readline(), deadline - loop.time())
        except TimeoutError:
            raise RuntimeError(
                f"the node did not start in {START_TIMEOUT_S:g} s; see {log}"
            ) from None
        if not line:
            raise RuntimeError(f"the node exited before it was ready; see {log}")
        match = _READY.search(line)
        if match is not None:
            return int(match.group(2))


async def _drain(proc: asyncio.subprocess.Process) -> None:
    assert proc.stdout is not None
    while await proc.stdout.read(65536):
        pass


async def _cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
