"""The agent protocol, host side: ``AgentRuntime`` serves one agent's commands (auth by
host token, idempotency by task id, results by callback, reports to the node) and
``AgentServer`` puts one runtime on its own HTTP port. See ``agents/README.md``."""

from agents.runtime.errors import AgentCommandError, ReportError
from agents.runtime.protocol import Command, Handler
from agents.runtime.runtime import AgentRuntime, TaskJournal, drop_callback
from agents.runtime.server import AgentServer
from agents.runtime.taskcache import TaskCache, TaskEntry

__all__ = [
    "AgentCommandError",
    "AgentRuntime",
    "AgentServer",
    "Command",
    "Handler",
    "ReportError",
    "TaskCache",
    "TaskEntry",
    "TaskJournal",
    "drop_callback",
]
