"""The playbooks of ``ansible/``, run the way the node runs them (ansible-runner, through
``zstackpy.services.kvm.playbook``), against this machine with ``ansible_connection=local``
into a temporary prefix: no SSH, no packages, no service started."""

from __future__ import annotations

import asyncio
import stat
import sys
from pathlib import Path

import pytest

from tests.support.processes import REPO, node_env, run_cli
from zstackpy.services.kvm.playbook import PlaybookRun, run_playbook

pytestmark = pytest.mark.timeout(180)

ANSIBLE = REPO / "ansible"
LOCAL = {"ansible_connection": "local", "zstack_service": "none", "zstack_install_packages": False}


async def test_the_management_node_playbook_installs_settings_unit_and_schema(
    tmp_path: Path,
) -> None:
    prefix = tmp_path / "root"
    db_url = f"sqlite+aiosqlite:///{tmp_path / 'node.db'}"
    bus_password = "bus-Secret-in-url"
    admin_password = "admin-Secret-first"
    bus_url = f"amqp://zstack:{bus_password}@127.0.0.1:5672/zstack"
    run = PlaybookRun(
        playbook=ANSIBLE / "management-node.yml",
        host="127.0.0.1",
        extra_vars={
            **LOCAL,
            "zstack_prefix": str(prefix),
            "zstack_install_node": False,
            "zstack_node_bin": str(Path(sys.executable).with_name("zstackpy")),
            "zstack_db_url": db_url,
            "zstack_bus_url": bus_url,
            "zstack_admin_password": admin_password,
        },
        secrets=(bus_password, admin_password),
    )
    result = await asyncio.to_thread(run_playbook, run)
    assert result.ok, result.output
    for secret in (bus_password, admin_password):
        assert secret not in result.output

    settings = prefix / "etc" / "zstackpy" / "node.toml"
    assert stat.S_IMODE(settings.stat().st_mode) == 0o600
    text = settings.read_text()
    assert bus_url in text
    assert db_url in text
    env_file = prefix / "etc" / "zstackpy" / "node.env"
    assert env_file.read_text() == f"ZSTACK_ADMIN_PASSWORD={admin_password}\n"
    unit = (prefix / "etc" / "systemd" / "system" / "zstackpy.service").read_text()
    assert f"--config {settings} run" in unit
    # The playbook brought the database to the newest schema.
    code, out, err = await run_cli("--config", str(settings), "db", "current", env=node_env())
    assert code == 0, err
    current, _, newest = out.partition(";")
    assert current.split(":")[1].strip() == newest.split(":")[1].strip()


async def test_the_agent_playbook_refuses_to_run_without_a_token(tmp_path: Path) -> None:
    run = PlaybookRun(
        playbook=ANSIBLE / "kvm-agent.yml",
        host="127.0.0.1",
        extra_vars={**LOCAL, "zstack_prefix": str(tmp_path), "zstack_install_agent": False},
    )
    result = await asyncio.to_thread(run_playbook, run)
    assert not result.ok
    assert result.failed_task == "Check the token and the report URL are given"
    assert not (tmp_path / "etc").exists()
