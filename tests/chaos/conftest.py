"""Chaos runs: the harness (``python -m simulator.chaos``) as a child process, small
sizes, one fault per test; each run builds its own system and, in cluster mode, its own
MariaDB and RabbitMQ servers (never the shared ones a fault must not touch)."""

from __future__ import annotations

import asyncio
import json
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support.processes import REPO, node_env
from tests.support.real_server import real_servers_required

# Small: a CI run of every chaos test stays within a few minutes on two busy cores.
SMALL = ("--hosts", "3", "--ops", "30", "--concurrency", "6", "--vm-pool", "8")


def require_private_servers() -> None:
    """Cluster cases start their own mariadbd and RabbitMQ node: fail (CI) or skip
    (elsewhere) when the binaries are missing."""
    missing = [
        name
        for name in ("mariadbd", "mariadb-install-db", "rabbitmq-server", "rabbitmqctl")
        if shutil.which(name) is None and not Path(f"/usr/sbin/{name}").exists()
    ]
    if missing:
        reason = f"private servers need {missing} installed"
        if real_servers_required():
            pytest.fail(f"{reason} (real-server tests must run when CI=true)")
        pytest.skip(reason)


async def chaos(
    tmp_path: Path, *faults: str, args: tuple[str, ...] = (), timeout: float = 240
) -> dict[str, dict[str, Any]]:
    """Run the faults (one system each; cluster runs share one pair of private servers);
    their results (``Result.to_dict``) by fault, each with the printed table."""
    out_json = tmp_path / "result.json"
    chosen = [arg for fault in faults for arg in ("--fault", fault)]
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "simulator.chaos", *chosen, *SMALL, *args,
        "--workdir", str(tmp_path / "run"), "--json", str(out_json),
        env=node_env(), cwd=REPO,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.terminate()  # the harness stops what it started on SIGTERM
        await proc.wait()
        raise
    text = out.decode(errors="replace")
    assert out_json.exists(), f"the chaos run failed ({proc.returncode}):\n{text[-4000:]}"
    results: dict[str, dict[str, Any]] = {}
    for result in json.loads(out_json.read_text()):
        result["table"] = text
        results[result["fault"]] = result
    return results


def assert_invariants(result: dict[str, Any]) -> None:
    assert result["holds"], f"{result['violations']}\n{result['table']}"
    assert result["lost"] == 0
    assert result["hung"] == 0
    assert result["stuck"] == []
    assert result["disagreements"] == []
    assert result["duplicates"] == []
    # The fault met the load: operations were in flight while it lasted.
    assert result["duringFault"] > 0, result["table"]
