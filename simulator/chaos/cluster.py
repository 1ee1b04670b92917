"""The system under test as child processes: one ``python -m simulator`` and N
``zstackpy run`` nodes sharing a database and a bus.

Embedded (``servers=None``): one node on a SQLite file with the in-process bus; a restart
reopens the same file. Cluster: every node on the private MariaDB and RabbitMQ
(``servers.py``). Nodes are killed with SIGKILL (``kill -9``) or stopped with SIGTERM, and
started again with the same settings (each start is a new node uuid, as in production).
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from simulator.chaos.servers import PrivateMariaDB, PrivateRabbitMQ, free_port

READY = re.compile(rb"management node ([0-9a-f]{32}) ready at http://[^:]+:(\d+)/health")
START_TIMEOUT_S = 120.0
REPO = Path(__file__).resolve().parents[2]


@dataclass
class NodeProc:
    index: int
    proc: asyncio.subprocess.Process
    uuid: str
    port: int
    drain: asyncio.Task[None]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def alive(self) -> bool:
        return self.proc.returncode is None


@dataclass
class Servers:
    """The private servers of a cluster run, and the database and vhost it uses there."""

    db: PrivateMariaDB
    bus: PrivateRabbitMQ
    db_url: str = ""
    bus_url: str = ""


@dataclass
class SystemUnderTest:
    workdir: Path
    admin_password: str
    servers: Servers | None = None
    extra_env: dict[str, str] = field(default_factory=dict)
    sim_url: str = ""
    nodes: list[NodeProc] = field(default_factory=list)
    _sim: asyncio.subprocess.Process | None = None
    _starts: int = 0

    # ----- lifecycle --------------------------------------------------------------------

    async def start_simulator(self) -> None:
        port = free_port()
        with (self.workdir / "simulator.log").open("ab") as out:
            self._sim = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "simulator", "--port", str(port), "--log-level", "WARNING",
                stdout=out, stderr=out, cwd=REPO,
            )  # fmt: skip
        self.sim_url = f"http://127.0.0.1:{port}"
        loop = asyncio.get_running_loop()
        deadline = loop.time() + START_TIMEOUT_S
        async with aiohttp.ClientSession() as http:
            while True:
                try:
                    async with http.get(f"{self.sim_url}/simulator/stats") as resp:
                        if resp.status == 200:
                            return
                except aiohttp.ClientError:
                    pass
                if self._sim.returncode is not None or loop.time() > deadline:
                    raise RuntimeError("the simulator did not start; see simulator.log")
                await asyncio.sleep(0.1)

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("ZSTACK_")}
        env["PYTHONPATH"] = str(REPO)
        env.update(
            ZSTACK_DATA_DIR=str(self.workdir),
            ZSTACK_ADMIN_PASSWORD=self.admin_password,
            ZSTACK_SIMULATOR="1",
            ZSTACK_SIMULATOR_URL=self.sim_url,
            ZSTACK_LOG_LEVEL="INFO",
        )
        if self.servers is not None:
            env.update(ZSTACK_DB_URL=self.servers.db_url, ZSTACK_BUS_URL=self.servers.bus_url)
        env.update(self.extra_env)
        return env

    async def upgrade_db(self) -> None:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "zstackpy", "db", "upgrade", env=self.env(), cwd=REPO,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        out, _ = await proc.communicate()
        if proc.returncode != 0:
            raise RuntimeError(f"zstackpy db upgrade failed: {out.decode(errors='replace')}")

    async def start_node(self, index: int | None = None) -> NodeProc:
        """Start a node (``index``: the slot of one that died, else a new slot)."""
        self._starts += 1
        slot = len(self.nodes) if index is None else index
        log = self.workdir / f"node-{slot}-{self._starts}.log"
        with log.open("wb") as out:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "zstackpy", "run", "--port", "0",
                env=self.env(), cwd=REPO, stdout=asyncio.subprocess.PIPE, stderr=out,
            )  # fmt: skip
        uuid, port = await _ready(proc, log)
        node = NodeProc(slot, proc, uuid, port, asyncio.create_task(_drain(proc)))
        if index is None:
            self.nodes.append(node)
        else:
            self.nodes[index] = node
        return node

    async def kill(self, index: int) -> None:
        """``kill -9``: no goodbye, no cleanup."""
        node = self.nodes[index]
        if node.alive:
            node.proc.send_signal(signal.SIGKILL)
            await node.proc.wait()

    async def terminate(self, index: int, timeout: float = 60) -> int:  # noqa: ASYNC109
        """SIGTERM: a graceful stop; answers the exit status."""
        node = self.nodes[index]
        if node.alive:
            node.proc.terminate()
            try:
                await asyncio.wait_for(node.proc.wait(), timeout)
            except TimeoutError:
                node.proc.kill()
                await node.proc.wait()
        assert node.proc.returncode is not None
        return node.proc.returncode

    def live_nodes(self) -> list[NodeProc]:
        return [n for n in self.nodes if n.alive]

    async def close(self) -> None:
        for node in self.nodes:
            await self.terminate(node.index, timeout=20)
            node.drain.cancel()
        if self._sim is not None and self._sim.returncode is None:
            self._sim.terminate()
            await self._sim.wait()


async def _ready(proc: asyncio.subprocess.Process, log: Path) -> tuple[str, int]:
    assert proc.stdout is not None
    loop = asyncio.get_running_loop()
    deadline = loop.time() + START_TIMEOUT_S
    while True:
        try:
            line = await asyncio.wait_for(proc.stdout.readline(), deadline - loop.time())
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise RuntimeError(
                f"a node did not start in {START_TIMEOUT_S:g} s; see {log}"
            ) from None
        if not line:
            await proc.wait()
            raise RuntimeError(f"a node exited before it was ready; see {log}")
        match = READY.search(line)
        if match is not None:
            return match.group(1).decode(), int(match.group(2))


async def _drain(proc: asyncio.subprocess.Process) -> None:
    # A full stdout pipe would block the node at its next print.
    assert proc.stdout is not None
    while await proc.stdout.read(65536):
        pass
