"""The ``ansible`` agent driver: real KVM hosts and virtual-router appliances, reached at
their management IP and deployed through ansible-runner: ``ansible/kvm-agent.yml`` with the
host's SSH user and password, ``ansible/vrouter-agent.yml`` with the appliance user and
private key the operator configured (``ZSTACK_APPLIANCE_SSH_USER``/``_KEY``).

The playbook runs in a worker thread (ansible-runner blocks for the whole run), never on
the event loop; at most ``MAX_PARALLEL_DEPLOYS`` run at once per node. A failed run is
AGENT.1007 naming the failing task and its message; the connect flow then rolls back.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
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
from zstackpy.services.virtualrouter.messages import VIRTUAL_ROUTER

log = logging.getLogger(__name__)

REPO_ANSIBLE_DIR = Path(__file__).resolve().parents[3] / "ansible"
KVM_AGENT_PLAYBOOK = "kvm-agent.yml"
VROUTER_AGENT_PLAYBOOK = "vrouter-agent.yml"
APPLIANCE_KEY_SETTING = "ZSTACK_APPLIANCE_SSH_KEY"
MAX_PARALLEL_DEPLOYS = 4  # each is an ansible-playbook process, SSH sessions and all


@dataclass(frozen=True, slots=True)
class ApplianceLogin:
    """How the node logs in to appliances: their image's user (sudo without a password
    when not root) and the private key whose public half the image accepts."""

    username: str
    key_file: Path | None


class AnsibleDriver:
    def __init__(
        self,
        ansible_dir: Path,
        extra_vars: dict[str, Any],
        appliance: ApplianceLogin | None = None,
    ) -> None:
        self.ansible_dir = ansible_dir
        self.extra_vars = extra_vars
        self.appliance = appliance or ApplianceLogin("root", None)
        self._slots = asyncio.Semaphore(MAX_PARALLEL_DEPLOYS)

    def agent_url(self, endpoint: AgentEndpoint, path: str) -> str:
        return direct_url(endpoint, path)

    def deploys_on_reconnect(self) -> bool:
        return True

    async def deploy(self, request: DeployRequest) -> DeployOutcome:
        endpoint = request.endpoint
        run = self._playbook_run(request)
        log.info(
            "deploying the %s agent to %s (%s)", request.kind, endpoint.address, endpoint.owner_uuid
        )
        async with self._slots:
            result = await asyncio.to_thread(run_playbook, run)
        if not result.ok:
            task = result.failed_task or "(none: the run itself failed)"
            raise ZError(
                AgentErr.DEPLOY_FAILED,
                f"deploying the {request.kind} agent to {endpoint.address} failed at task "
                f"'{task}': {result.failure or result.status}",
                address=endpoint.address,
                kind=request.kind,
                task=result.failed_task,
                status=result.status,
                output=result.output[-4000:],
            )
        log.info("deployed the %s agent to %s", request.kind, endpoint.address)
        return DeployOutcome(output=result.output)

    def _playbook_run(self, request: DeployRequest) -> PlaybookRun:
        if request.kind == KVM_AGENT:
            return self._host_run(request)
        if request.kind == VIRTUAL_ROUTER:
            return self._appliance_run(request)
        raise ZError(
            SysErr.UNIMPLEMENTED,
            f"this node deploys KVM and virtual-router agents, not the {request.kind} agent; "
            "install it by hand or run the node with ZSTACK_SIMULATOR=1",
            address=request.endpoint.address,
            kind=request.kind,
        )

    def _host_run(self, request: DeployRequest) -> PlaybookRun:
        endpoint = request.endpoint
        return PlaybookRun(
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

    def _appliance_run(self, request: DeployRequest) -> PlaybookRun:
        # The login is the node's setting, not the request's: an appliance has no
        # password, and its user is whatever the operator's image has.
        endpoint = request.endpoint
        login = self.appliance
        if login.key_file is None:
            raise ZError(
                AgentErr.DEPLOY_FAILED,
                f"cannot deploy the agent of virtual router {endpoint.owner_uuid}: the node "
                f"has no SSH key for appliances (set {APPLIANCE_KEY_SETTING})",
                address=endpoint.address,
                kind=request.kind,
                task=None,
                setting=APPLIANCE_KEY_SETTING,
            )
        return PlaybookRun(
            playbook=self.ansible_dir / VROUTER_AGENT_PLAYBOOK,
            host=endpoint.address,
            username=login.username,
            ssh_port=request.ssh_port,
            ssh_key_file=login.key_file,
            become=login.username != "root",
            extra_vars={
                **self.extra_vars,
                "zstack_agent_port": endpoint.port,
                "zstack_router_uuid": endpoint.owner_uuid,
                "zstack_send_command_url": request.send_command_url,
                "zstack_agent_token": endpoint.token,
            },
            secrets=(endpoint.token,),
        )

    async def close(self) -> None:
        pass


class AnsibleDriverProvider:
    def driver_name(self) -> str:
        return REAL_HOSTS_DRIVER

    async def open_driver(self, ctx: NodeContext) -> AgentDriver:
        settings = ctx.settings
        return AnsibleDriver(
            settings.ansible_dir or REPO_ANSIBLE_DIR,
            settings.deploy_extra_vars,
            ApplianceLogin(settings.appliance_ssh_user, settings.appliance_ssh_key),
        )
