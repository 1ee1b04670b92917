"""Node <-> agent protocol: the client that sends commands and the endpoints agents post to."""

from zstackpy.core.agent.client import (
    CALLBACK_PATH,
    SEND_COMMAND_PATH,
    AgentClient,
    AgentReport,
    ReportHandler,
)
from zstackpy.core.agent.endpoint import (
    KVM_AGENT_PORT,
    SFTP_BACKUP_STORAGE_AGENT_PORT,
    AgentEndpoint,
    AgentErr,
)

__all__ = [
    "CALLBACK_PATH",
    "KVM_AGENT_PORT",
    "SEND_COMMAND_PATH",
    "SFTP_BACKUP_STORAGE_AGENT_PORT",
    "AgentClient",
    "AgentEndpoint",
    "AgentErr",
    "AgentReport",
    "ReportHandler",
]
