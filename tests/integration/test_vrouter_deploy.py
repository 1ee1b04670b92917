"""Deploying the virtual-router agent on real machines.

``ansible/vrouter-agent.yml`` run for real against this machine, the way the node runs
it (ansible-runner, ``ansible_connection=local``, into a temporary prefix): the agent's
code and virtual environment are installed, the agent is started without systemd
(``zstack_service=daemon``: no systemd runs here) applying everything in a network
namespace this test makes, and answers its ping at 127.0.0.1 with the router's token; a
second run changes nothing; a new token restarts it. The Debian packages are not
installed (this machine has them; a real appliance gets them from the playbook).

The ``ansible`` driver maps a failing deployment (an appliance that never accepts SSH,
reached with the configured key) to AGENT.1007 naming the task, and refuses to start one
without a key.

Under CI=true (or ZSTACK_TEST_REAL=1) missing prerequisites fail the test instead of
skipping it."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.agent_caller import AgentCaller
from tests.support.processes import REPO
from tests.support.real_server import real_servers_required
from zstackpy.core.agent import AgentEndpoint
from zstackpy.core.agent.driver import DeployRequest
from zstackpy.core.errors import ZError
from zstackpy.services.kvm.deployer import REPO_ANSIBLE_DIR, AnsibleDriver, ApplianceLogin
from zstackpy.services.kvm.playbook import PlaybookResult, PlaybookRun, run_playbook
from zstackpy.services.virtualrouter.messages import VIRTUAL_ROUTER

pytestmark = pytest.mark.timeout(240)

PLAYBOOK = REPO / "ansible" / "vrouter-agent.yml"
CTL = "opt/zstackpy/bin/zstackpy-vrouter-agent"
PIDFILE = "run/zstackpy/vrouter-agent.pid"


def _missing() -> str | None:
    if os.geteuid() != 0:
        return "network namespaces need root"
    for tool in ("ip", "start-stop-daemon"):
        if shutil.which(tool) is None:
            return f"{tool} is missing (Debian iproute2, dpkg)"
    if subprocess.run([sys.executable, "-m", "venv", "--help"], capture_output=True).returncode:
        return "python -m venv does not work"
    return None


@pytest.fixture
def prerequisites() -> None:
    reason = _missing()
    if reason is None:
        return
    if real_servers_required():
        pytest.fail(f"{reason} (real-machine tests must run when CI=true)")
    pytest.skip(reason)


@pytest.fixture
def netns(prerequisites: None) -> Iterator[str]:
    name = f"zs-vrdeploy-{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        yield name
    finally:
        subprocess.run(["ip", "netns", "delete", name], check=True)


@pytest.fixture
def prefix(tmp_path: Path, netns: str) -> Iterator[Path]:
    root = tmp_path / "root"
    try:
        yield root
    finally:
        # Stop the agent the playbook started (the pid file names it; nothing else).
        ctl = root / CTL
        if ctl.exists():
            subprocess.run([str(ctl), "stop"], check=False, capture_output=True)


@pytest.fixture
async def caller() -> AsyncIterator[AgentCaller]:
    running = AgentCaller("")
    await running.start()
    try:
        yield running
    finally:
        await running.close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _deploy(prefix: Path, netns: str, port: int, token: str) -> PlaybookResult:
    extra: dict[str, Any] = {
        "ansible_connection": "local",
        "zstack_prefix": str(prefix),
        "zstack_service": "daemon",
        "zstack_install_packages": False,
        "zstack_agent_host": "127.0.0.1",
        "zstack_agent_port": port,
        "zstack_vrouter_netns": netns,
        "zstack_router_uuid": "r1",
        "zstack_send_command_url": "http://127.0.0.1:1/sendcommand",
        "zstack_agent_token": token,
    }
    run = PlaybookRun(playbook=PLAYBOOK, host="127.0.0.1", extra_vars=extra, secrets=(token,))
    result = await asyncio.to_thread(run_playbook, run)
    assert result.ok, f"{result.failed_task}: {result.failure}\n{result.output[-3000:]}"
    assert token not in result.output
    return result


async def _ping(caller: AgentCaller, port: int, token: str) -> dict[str, Any]:
    """The node's ping (async, answered by callback), retried while the agent starts."""
    caller.token = token
    for _ in range(50):
        try:
            return await caller.call(port, "/ping", {"uuid": "r1"}, timeout=5)
        except (OSError, AssertionError):
            await asyncio.sleep(0.2)
    raise AssertionError("the deployed agent never answered its ping")


def _agent_pid(prefix: Path) -> int:
    return int((prefix / PIDFILE).read_text().split()[0])


async def test_the_playbook_installs_and_starts_the_agent_idempotently(
    prefix: Path, netns: str, caller: AgentCaller
) -> None:
    port = _free_port()
    first = await _deploy(prefix, netns, port, "token-one")
    answer = await _ping(caller, port, "token-one")
    assert answer["success"] is True, answer
    assert answer["uuid"] == "r1"
    etc = prefix / "etc" / "zstackpy"
    assert (etc / "vrouter-agent.token").stat().st_mode & 0o777 == 0o600
    assert f'netns = "{netns}"' in (etc / "vrouter-agent.toml").read_text()
    unit = (prefix / "etc" / "systemd" / "system" / "zstackpy-vrouter-agent.service").read_text()
    assert "-m agents.vrouter --config" in unit
    # The agents' code only (the vrouter agent reuses the KVM agent's rule modules).
    installed = sorted(p.name for p in (prefix / "opt" / "zstackpy" / "agents").iterdir())
    assert installed == ["__init__.py", "kvm", "runtime", "vrouter"]
    assert "Start the agent (no systemd)" in first.changed_tasks
    pid = _agent_pid(prefix)

    second = await _deploy(prefix, netns, port, "token-one")
    assert second.changed_tasks == (), second.changed_tasks
    assert _agent_pid(prefix) == pid

    # A re-created router's new token: the agent restarts and takes only the new one.
    third = await _deploy(prefix, netns, port, "token-two")
    # (The token's task has no_log: its result, "changed" included, is hidden.)
    assert third.changed_tasks == ("Restart the agent (no systemd)",), third.changed_tasks
    assert _agent_pid(prefix) != pid
    assert (await _ping(caller, port, "token-two"))["success"] is True
    status, _ = await _post_ping(caller, port, "token-one")
    assert status == 401


async def _post_ping(caller: AgentCaller, port: int, token: str) -> tuple[int, str]:
    headers = {
        "Authorization": f"Bearer {token}",
        "taskuuid": uuid.uuid4().hex,
        "callbackurl": caller.callback_url,
    }
    url = f"http://127.0.0.1:{port}/ping"
    async with caller.http.post(url, json={"uuid": "r1"}, headers=headers) as answer:
        return answer.status, await answer.text()


def _router_request(ssh_port: int, token: str) -> DeployRequest:
    return DeployRequest(
        endpoint=AgentEndpoint(owner_uuid="r1", address="127.0.0.1", port=7272, token=token),
        kind=VIRTUAL_ROUTER,
        username="vyos",
        password="",
        ssh_port=ssh_port,
        send_command_url="http://127.0.0.1:1/sendcommand",
    )


async def test_a_failing_router_deployment_is_a_structured_error(tmp_path: Path) -> None:
    key = tmp_path / "appliance_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    driver = AnsibleDriver(
        REPO_ANSIBLE_DIR,
        {"zstack_connect_timeout": 3},
        ApplianceLogin(username="debian", key_file=key),
    )
    token = "router-Secret-token"
    # Nothing listens there: the appliance "never booted".
    with pytest.raises(ZError) as failed:
        await driver.deploy(_router_request(_free_port(), token))
    error = failed.value
    assert error.code == "AGENT.1007"
    assert error.details["task"] == "Wait for the appliance to accept SSH"
    assert error.details["kind"] == VIRTUAL_ROUTER
    assert "127.0.0.1" in error.description
    assert "Wait for the appliance to accept SSH" in error.description
    assert token not in error.description
    assert token not in str(error.details["output"])


async def test_a_router_deployment_without_an_appliance_key_is_refused() -> None:
    driver = AnsibleDriver(REPO_ANSIBLE_DIR, {}, ApplianceLogin(username="debian", key_file=None))
    with pytest.raises(ZError) as refused:
        await driver.deploy(_router_request(22, "t"))
    assert refused.value.code == "AGENT.1007"
    assert refused.value.details["setting"] == "ZSTACK_APPLIANCE_SSH_KEY"
    assert "ZSTACK_APPLIANCE_SSH_KEY" in refused.value.description
