"""The ``ansible`` agent driver: real KVM hosts, reached at their management IP and
deployed by ``ansible/kvm-agent.yml`` through ansible-runner.

The playbook runs in a worker thread (ansible-runner blocks for the whole run), never on
the event loop; at most ``MAX_PARALLEL_DEPLOYS`` run at once per node. A failed run is
AGENT.1007 naming the failing task and its message; the connect flow then rolls back.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

from zstackpy.core.agent import AgentEndpoint, AgentErr
from zstackpy.core.agent.driver import (
    KVM_AGENT,
    REAL_HOSTS_DRIVER,
    AgentDriver,
    DeployOutcome,
    DeployRequest,
    direct_url,
)
from zstackpy.core.context import NodeContext
from zstackpy.core.errors import SysErr, ZError
from zstackpy.services.kvm.playbook import PlaybookRun, run_playbook

log = logging.getLogger(__name__)

REPO_ANSIBLE_DIR = Path(__file__).resolve().parents[3] / "ansible"
KVM_AGENT_PLAYBOOK = "kvm-agent.yml"
MAX_PARALLEL_DEPLOYS = 4  # each is an ansible-playbook process, SSH sessions and all


class AnsibleDriver:
    def __init__(self, ansible_dir: Path, extra_vars: dict[str, Any]) -> None:
        self.ansible_dir = ansible_dir
        self.extra_vars = extra_vars
        self._slots = asyncio.Semaphore(MAX_PARALLEL_DEPLOYS)

    def agent_url(self, endpoint: AgentEndpoint, path: str) -> str:
        return direct_url(endpoint, path)

    def deploys_on_reconnect(self) -> bool:
        return True

    async def deploy(self, request: DeployRequest) -> DeployOutcome:
        endpoint = request.endpoint
        if request.kind != KVM_AGENT:
            raise ZError(
                SysErr.UNIMPLEMENTED,
                f"this node deploys KVM agents only, not the {request.kind} agent; install "
                "it by hand or run the node with ZSTACK_SIMULATOR=1",
                address=endpoint.address,
                kind=request.kind,
            )
        run = PlaybookRun(
            playbook=self.ansible_dir / KVM_AGENT_PLAYBOOK,
            host=endpoint.address,
            username=request.username,
            ssh_port=request.ssh_port,
            extra_vars={
                # The operator's extras first: the node's own values below always win.
                **self.extra_vars,
                "ansible_password": request.password,
                "ansible_become_password": request.password,
                "zstack_agent_port": endpoint.port,
                "zstack_host_uuid": endpoint.owner_uuid,
                "zstack_send_command_url": request.send_command_url,
                "zstack_agent_token": endpoint.token,
            },
            secrets=(request.password, endpoint.token),
        )
        log.info("deploying the KVM agent to %s (%s)", endpoint.address, endpoint.owner_uuid)
        async with self._slots:
            result = await asyncio.to_thread(run_playbook, run)
        if not result.ok:
            task = result.failed_task or "(none: the run itself failed)"
            raise ZError(
                AgentErr.DEPLOY_FAILED,
                f"deploying the agent to {endpoint.address} failed at task '{task}': "
                f"{result.failure or result.status}",
                address=endpoint.address,
                task=result.failed_task,
                status=result.status,
                output=result.output[-4000:],
            )
        log.info("deployed the KVM agent to %s", endpoint.address)
        return DeployOutcome(output=result.output)

    async def close(self) -> None:
        pass


class AnsibleDriverProvider:
    def driver_name(self) -> str:
        return REAL_HOSTS_DRIVER

    async def open_driver(self, ctx: NodeContext) -> AgentDriver:
        settings = ctx.settings
        return AnsibleDriver(settings.ansible_dir or REPO_ANSIBLE_DIR, settings.deploy_extra_vars)
