"""Extension points of the host domain: what other plugins hook into."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from zstackpy.core.agent import AgentEndpoint
from zstackpy.services.host.messages import AllocateHostMsg, HostCandidate
from zstackpy.services.host.models import HostVO


@dataclass(frozen=True, slots=True)
class ConnectingHost:
    """A host at the end of a (re)connect: its agent answered and its capacity is read."""

    uuid: str
    name: str
    zone_uuid: str
    cluster_uuid: str
    management_ip: str
    hypervisor_type: str
    agent: AgentEndpoint
    is_first_connect: bool  # True while AddKVMHost runs; False on reconnects


class HostConnectExtension(Protocol):
    """Called in the host's work queue at the end of every connect, in registration order,
    to prepare the host for what it serves (init local storage, mount NFS shares, create
    bridges of attached L2 networks). Call the agent with ``host.agent`` through
    ``ctx.agents``. Raise ZError to fail the connect: an add is rolled back and answers
    that error; a reconnect leaves the host Disconnected."""

    async def host_connected(self, host: ConnectingHost) -> None: ...


# The agent's answer to a ping, as it came.
PingAnswer = Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class PingRider:
    """What an extension has ride on a host's next ping: fields added to the ping command
    (the agent answers them in the same answer, e.g. the host's VM states), and what to do
    with the answer once the host answered (never called when the ping failed)."""

    fields: Mapping[str, Any] = field(default_factory=dict)
    answered: Callable[[PingAnswer], Awaitable[None]] | None = None


class HostPingExtension(Protocol):
    """Called on the host's owner node before each ping of a Connected host, in the ping
    round (``host ping.parallelismDegree`` bounds how many run at once), e.g. to compare
    the host's VMs with the database: one agent call per host and round serves both, where
    a second call would double what pinging costs the node and the hosts. Errors are
    logged, never fatal to the round; the host stays Connected whatever this does."""

    async def before_ping(self, host: HostVO) -> PingRider | None: ...


class HostAllocatorFilter(Protocol):
    """One filter of the host allocator chain (``flows/host-allocate.yaml``'s
    ``run-allocator-filters`` step calls every registered filter in turn).

    Return the candidates that can serve ``request`` (a subset, order kept). Returning an
    empty list fails the allocation with HOST.1101 naming the filter; raise ZError
    HOST.1101 yourself to give a better reason (e.g. "no primary storage in cluster X has
    10 GiB free")."""

    async def filter_hosts(
        self, request: AllocateHostMsg, candidates: list[HostCandidate]
    ) -> list[HostCandidate]: ...


# ----- additions of the host service ----------------------------------------------------


class HypervisorBackend(Protocol):
    """One hypervisor type's part of host handling (ZStack's HypervisorFactory): how its
    hosts are reached, (re)connected and pinged. The host service owns the generic part
    (state, status, capacity, ping rounds, deletes) and picks the backend whose
    ``hypervisor_type()`` equals the host's. The kvm plugin registers the KVM backend."""

    def hypervisor_type(self) -> str:
        """``HostVO.hypervisor_type`` of the hosts this backend drives, e.g. "KVM"."""
        ...

    def agent_endpoint(self, host: HostVO) -> AgentEndpoint:
        """Where the host's agent listens and the token it accepts."""
        ...

    def command_parallelism(self) -> int:
        """Agent commands in flight at once per host (KVM: ``kvm host.syncLevel``)."""
        ...

    async def connect(self, host_uuid: str, redeploy: bool = False) -> None:
        """Connect an existing host again: agent handshake, facts, capacity, every
        HostConnectExtension; status Connecting, then Connected at the end. ``redeploy``
        (ReconnectHost from the API) installs the agent again first where the backend's
        hosts are real machines. Called in the host's work queue (the caller holds it).
        Raise ZError with the cause; the caller marks the host Disconnected."""
        ...

    async def ping(
        self,
        host: HostVO,
        timeout: float,  # noqa: ASYNC109
        fields: Mapping[str, Any],
    ) -> PingAnswer:
        """Check the agent answers within ``timeout`` s; the command carries ``fields``
        (what ping riders ask for) and the agent's answer is returned. Raise ZError when it
        does not answer; HOST.1004 when it answers as another host (the caller then
        reconnects it)."""
        ...


class HostAllocatorStrategy(Protocol):
    """How the allocator orders the hosts that passed every filter (the ``sort-by-strategy``
    step). ``name`` is what ``AllocateHostMsg.strategy`` names; GetHostAllocatorStrategies
    lists them. The allocator tries hosts in the returned order until one reserves."""

    name: str

    async def sort_hosts(
        self, request: AllocateHostMsg, candidates: list[HostCandidate]
    ) -> list[HostCandidate]: ...
