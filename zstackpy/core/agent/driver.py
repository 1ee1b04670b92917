"""The extension point that picks who plays the hosts: real machines or the simulator.

An ``AgentDriverProvider`` is what a plugin registers (the kvm plugin: real hosts,
reached at their management IP and deployed with Ansible; the simulator plugin: every
host played by a simulator process). The node opens the one its settings name
(``ZSTACK_SIMULATOR``) and hands the ``AgentDriver`` to its ``AgentClient``; every
command, deployment and callback then goes the same way whichever plays the hosts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from zstackpy.core.agent.endpoint import AgentEndpoint
from zstackpy.core.errors import SysErr, ZError

if TYPE_CHECKING:
    from zstackpy.core.context import NodeContext

SIMULATOR_DRIVER = "simulator"
REAL_HOSTS_DRIVER = "ansible"

KVM_AGENT = "kvm"
SFTP_BACKUP_STORAGE_AGENT = "sftpBackupStorage"


@dataclass(frozen=True, slots=True)
class DeployRequest:
    """Install (or re-install) the ``kind`` agent on the machine of ``endpoint`` with
    ``endpoint.token``, telling it to report to ``send_command_url``. ``password`` and
    the token are secrets: a driver never logs them nor keeps them in its output."""

    endpoint: AgentEndpoint
    kind: str
    username: str
    password: str
    ssh_port: int
    send_command_url: str

    def __repr__(self) -> str:  # never print the password or the token
        return f"DeployRequest({self.kind}, {self.endpoint!r}, {self.username}@:{self.ssh_port})"


@dataclass(frozen=True, slots=True)
class DeployOutcome:
    """What a deployment printed (secrets removed), kept on the host's record."""

    output: str = ""


class AgentDriver(Protocol):
    """One node's way to its agents; made by a provider's ``open_driver``."""

    def agent_url(self, endpoint: AgentEndpoint, path: str) -> str:
        """The URL of ``path`` on the agent of ``endpoint``."""
        ...

    def deploys_on_reconnect(self) -> bool:
        """True when ReconnectHost installs the agent again (real machines: the playbook
        brings a changed or broken host back to the expected state)."""
        ...

    async def deploy(self, request: DeployRequest) -> DeployOutcome:
        """Install the agent. Raises ZError AGENT.1007 naming what failed (for a playbook,
        the failing task); a kind the driver cannot deploy is SYS.1014."""
        ...

    async def close(self) -> None: ...


class AgentDriverProvider(Protocol):
    """Registered by a plugin. ``driver_name`` is what the node's settings select:
    ``simulator`` when hosts are simulated, ``ansible`` otherwise."""

    def driver_name(self) -> str: ...

    async def open_driver(self, ctx: NodeContext) -> AgentDriver:
        """A driver for this node (called once per node, after its HTTP server bound)."""
        ...


def direct_url(endpoint: AgentEndpoint, path: str) -> str:
    """``http://<address>:<port><path>``: an agent on a real machine."""
    host = f"[{endpoint.address}]" if ":" in endpoint.address else endpoint.address
    return f"http://{host}:{endpoint.port}{path}"


class InstalledAgentsDriver:
    """Agents at their real addresses that someone else installed (by hand, or a test):
    commands go straight to them; deployment is refused."""

    def agent_url(self, endpoint: AgentEndpoint, path: str) -> str:
        return direct_url(endpoint, path)

    def deploys_on_reconnect(self) -> bool:
        return False

    async def deploy(self, request: DeployRequest) -> DeployOutcome:
        raise ZError(
            SysErr.UNIMPLEMENTED,
            "this node does not install agents; install it on the machine by hand",
            address=request.endpoint.address,
        )

    async def close(self) -> None:
        pass
