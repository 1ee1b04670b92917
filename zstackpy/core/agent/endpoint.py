"""Where an agent is, and the errors talking to one can end in."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

KVM_AGENT_PORT = 7070
SFTP_BACKUP_STORAGE_AGENT_PORT = 7171


class AgentErr(StrEnum):
    """Codes of node -> agent calls (listed in docs/errors.md)."""

    UNREACHABLE = "AGENT.1001"  # no connection, or the connection dropped before an answer
    TIMEOUT = "AGENT.1002"  # the agent took the command but no result came in time
    COMMAND_FAILED = "AGENT.1003"  # the agent ran the command and reported success false
    REFUSED = "AGENT.1004"  # the agent refused the request (token, headers): 4xx
    BAD_RESPONSE = "AGENT.1005"  # an answer that is not the protocol's JSON
    TOO_MANY_CALLS = "AGENT.1006"  # the per-agent bound on calls in flight is full
    DEPLOY_FAILED = "AGENT.1007"  # deployment (SSH + playbook, or the simulator's) failed


@dataclass(frozen=True, slots=True)
class AgentEndpoint:
    """One agent: the resource that owns it (host, backup storage), its management address
    (an IP or host name; in simulated mode only a label) and port, and the token the node
    proves itself with. ``owner_uuid`` names the per-agent queue that bounds calls in flight.
    """

    owner_uuid: str
    address: str
    port: int
    token: str

    def __repr__(self) -> str:  # never print the token
        return f"AgentEndpoint({self.owner_uuid}, {self.address}:{self.port})"
