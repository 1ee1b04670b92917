"""The multi-node deployments: ``docker-compose.yml`` validates, and
``deploy/two-nodes.sh --check`` starts two nodes on this machine's MariaDB and RabbitMQ
that become healthy and see each other."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
from pathlib import Path

import pytest
import yaml

from tests.support.mariadb import require_mariadb
from tests.support.processes import REPO, node_env
from tests.support.rabbit import require_rabbitmq
from tests.support.real_server import real_servers_required

pytestmark = pytest.mark.real_server


async def _run(
    *argv: str, env: dict[str, str] | None = None, timeout: float = 120
) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        *argv,
        cwd=REPO,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), timeout)
    assert proc.returncode is not None
    return proc.returncode, out.decode(errors="replace")


async def _compose_command() -> list[str] | None:
    """Docker's compose plugin, else the standalone docker-compose; None without both."""
    if shutil.which("docker"):
        code, _ = await _run("docker", "compose", "version")
        if code == 0:
            return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    return None


async def test_docker_compose_file_is_valid_with_health_checks_everywhere() -> None:
    compose = await _compose_command()
    if compose is None:
        if real_servers_required():
            pytest.fail("neither `docker compose` nor docker-compose is installed (CI needs one)")
        pytest.skip("neither `docker compose` nor docker-compose is installed")
    file = str(REPO / "docker-compose.yml")
    code, out = await _run(*compose, "-f", file, "config", "-q")
    assert code == 0, out
    code, out = await _run(*compose, "-f", file, "config")
    assert code == 0, out
    services = yaml.safe_load(out)["services"]
    assert set(services) == {"mariadb", "rabbitmq", "migrate", "node1", "node2"}
    for name in ("mariadb", "rabbitmq", "node1", "node2"):
        assert services[name]["healthcheck"]["test"], name
    for name in ("node1", "node2"):
        node = services[name]
        assert node["build"]["dockerfile"] == "deploy/Dockerfile"
        assert node["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
        assert node["environment"]["ZSTACK_BUS_URL"].startswith("amqp://")
        assert node["environment"]["ZSTACK_ADVERTISE_HOST"] == name


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


async def test_two_nodes_script_starts_a_cluster_of_two(tmp_path: Path) -> None:
    await require_mariadb()
    require_rabbitmq()
    env = node_env(
        ZSTACK_PORTS=" ".join(map(str, _free_ports(2))),
        ZSTACK_RUN_DIR=str(tmp_path),
    )
    env["PATH"] = os.environ.get("PATH", "")
    code, out = await _run("bash", "deploy/two-nodes.sh", "--check", env=env, timeout=150)
    logs = "".join(p.read_text(errors="replace")[-3000:] for p in tmp_path.glob("*.log"))
    assert code == 0, out + logs
    assert out.count(" ready at http://127.0.0.1:") == 2
    assert "(ring: 2)" in out
    assert "both nodes are healthy and see each other" in out
