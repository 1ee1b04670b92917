"""Private MariaDB and RabbitMQ servers that the chaos harness may stop and start.

The machine's own servers (3306, 5672) are shared: a fault must never touch them. Each
private server runs from a temporary directory on free loopback ports, as root, with its
own data: ``mariadb-install-db`` then ``mariadbd --skip-grant-tables``; a RabbitMQ node
named ``chaos-<pid>-<n>@localhost`` with its own cookie (HOME), Mnesia and log
directories, reached with ``rabbitmqctl -n <that node>``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
from dataclasses import dataclass, field
from itertools import count
from pathlib import Path

START_TIMEOUT_S = 90.0
_names = count(1)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def port_open(port: int) -> bool:
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        return False
    writer.close()
    await writer.wait_closed()
    return True


async def _wait_port(port: int, proc: asyncio.subprocess.Process, what: str, log: Path) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + START_TIMEOUT_S
    while not await port_open(port):
        if proc.returncode is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}; see {log}")
        if loop.time() > deadline:
            raise RuntimeError(f"{what} did not open port {port} in {START_TIMEOUT_S:g} s")
        await asyncio.sleep(0.2)


async def _run(*argv: str, env: dict[str, str] | None = None, limit_s: float = 60) -> str:
    proc = await asyncio.create_subprocess_exec(
        *argv,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), limit_s)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise RuntimeError(f"{argv[0]} took more than {limit_s:g} s") from None
    text = out.decode(errors="replace")
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({proc.returncode}): {text.strip()}")
    return text


async def _end(proc: asyncio.subprocess.Process | None, sig: int = signal.SIGTERM) -> None:
    """Signal the server's process group (it was started in a session of its own)."""
    if proc is None or proc.returncode is not None:
        return
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        return
    try:
        await asyncio.wait_for(proc.wait(), 30)
    except TimeoutError:
        os.killpg(proc.pid, signal.SIGKILL)
        await proc.wait()


@dataclass
class PrivateMariaDB:
    """``mariadbd`` on a free port with its data in ``workdir``; ``stop``/``start`` make
    an outage and end it (the data stays)."""

    workdir: Path
    port: int = field(default_factory=free_port)
    database: str = "zstack"
    _proc: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"mysql+asyncmy://root@127.0.0.1:{self.port}/{self.database}"

    @property
    def is_running(self) -> bool:
        return self._proc is not None and self._proc.returncode is None

    async def setup(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        await _run(
            _binary("mariadb-install-db", "mysql_install_db"),
            "--no-defaults",
            f"--datadir={self.workdir / 'data'}",
            "--user=root",
            "--skip-test-db",
            "--auth-root-authentication-method=normal",
        )
        await self.start()
        await _run(
            _binary("mariadb", "mysql"),
            "--no-defaults",
            "-h127.0.0.1",
            f"-P{self.port}",
            "-uroot",
            "-e",
            f"CREATE DATABASE `{self.database}` CHARACTER SET utf8mb4",
        )

    async def start(self) -> None:
        log = self.workdir / "mariadbd.log"
        with log.open("ab") as out:
            self._proc = await asyncio.create_subprocess_exec(
                _binary("mariadbd", "mysqld"),
                "--no-defaults",
                f"--datadir={self.workdir / 'data'}",
                "--user=root",
                f"--port={self.port}",
                "--bind-address=127.0.0.1",
                f"--socket={self.workdir / 'sock'}",
                f"--pid-file={self.workdir / 'pid'}",
                "--skip-grant-tables",
                "--skip-log-bin",
                "--innodb-buffer-pool-size=64M",
                "--max-connections=500",
                stdout=out,
                stderr=out,
                start_new_session=True,
            )
        await _wait_port(self.port, self._proc, "private mariadbd", log)

    async def new_database(self, name: str) -> str:
        """A fresh database on this server for one run; its URL."""
        await _run(
            _binary("mariadb", "mysql"), "--no-defaults", "-h127.0.0.1", f"-P{self.port}",
            "-uroot", "-e", f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4",
        )  # fmt: skip
        return f"mysql+asyncmy://root@127.0.0.1:{self.port}/{name}"

    async def stop(self) -> None:
        await _end(self._proc)
        self._proc = None

    async def close(self) -> None:
        await self.stop()
        shutil.rmtree(self.workdir / "data", ignore_errors=True)


@dataclass
class PrivateRabbitMQ:
    """A RabbitMQ node of its own; ``stop_app``/``start_app`` make a broker outage."""

    workdir: Path
    port: int = field(default_factory=free_port)
    dist_port: int = field(default_factory=free_port)
    node_name: str = field(default_factory=lambda: f"chaos-{os.getpid()}-{next(_names)}@localhost")
    _proc: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}/"

    def _env(self) -> dict[str, str]:
        home = self.workdir / "home"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("RABBITMQ_", "ERL_"))}
        env.update(
            HOME=str(home),
            RABBITMQ_NODENAME=self.node_name,
            RABBITMQ_DIST_PORT=str(self.dist_port),
            RABBITMQ_MNESIA_BASE=str(self.workdir / "mnesia"),
            RABBITMQ_LOG_BASE=str(self.workdir / "log"),
            RABBITMQ_CONFIG_FILE=str(self.workdir / "rabbitmq"),
            RABBITMQ_CONF_ENV_FILE=str(self.workdir / "rabbitmq-env.conf"),
            RABBITMQ_ENABLED_PLUGINS_FILE=str(self.workdir / "enabled_plugins"),
            ERL_EPMD_ADDRESS="127.0.0.1",
            # Loopback only, the distribution port included.
            ERL_FLAGS="-kernel inet_dist_use_interface {127,0,0,1}",
        )
        return env

    async def setup(self) -> None:
        home = self.workdir / "home"
        home.mkdir(parents=True, exist_ok=True)
        cookie = home / ".erlang.cookie"
        cookie.write_text(os.urandom(16).hex().upper())
        cookie.chmod(0o400)
        # The AMQP listener only here: RABBITMQ_NODE_PORT as well would declare it twice.
        (self.workdir / "rabbitmq.conf").write_text(
            f"listeners.tcp.local = 127.0.0.1:{self.port}\n"
        )
        (self.workdir / "rabbitmq-env.conf").write_text("")
        (self.workdir / "enabled_plugins").write_text("[].\n")
        log = self.workdir / "server.log"
        with log.open("ab") as out:
            self._proc = await asyncio.create_subprocess_exec(
                _rabbit_binary("rabbitmq-server"),
                env=self._env(),
                stdout=out,
                stderr=out,
                start_new_session=True,
            )
        await _wait_port(self.port, self._proc, f"private RabbitMQ {self.node_name}", log)

    async def ctl(self, *args: str) -> str:
        return await _run(
            _rabbit_binary("rabbitmqctl"), "-n", self.node_name, *args, env=self._env()
        )

    async def new_vhost(self, name: str) -> str:
        """A fresh vhost for one run; its AMQP URL."""
        await self.ctl("add_vhost", name)
        await self.ctl("set_permissions", "-p", name, "guest", ".*", ".*", ".*")
        return f"amqp://guest:guest@127.0.0.1:{self.port}/{name}"

    async def stop_app(self) -> None:
        await self.ctl("stop_app")

    async def start_app(self) -> None:
        await self.ctl("start_app")
        await self.ctl("await_startup")

    async def close(self) -> None:
        if self._proc is not None and self._proc.returncode is None:
            with contextlib.suppress(RuntimeError):
                await self.ctl("stop")
        await _end(self._proc)
        self._proc = None
        shutil.rmtree(self.workdir / "mnesia", ignore_errors=True)


def _binary(*names: str) -> str:
    for name in names:
        for where in (shutil.which(name), f"/usr/sbin/{name}", f"/usr/bin/{name}"):
            if where and Path(where).exists():
                return where
    raise RuntimeError(f"none of {names} is installed")


def _rabbit_binary(name: str) -> str:
    # The scripts themselves: /usr/sbin's wrappers would switch to the rabbitmq user, whose
    # HOME holds the shared node's cookie.
    direct = Path("/usr/lib/rabbitmq/bin") / name
    return str(direct) if direct.exists() else _binary(name)
