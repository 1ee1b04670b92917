"""The chain runs of one handled message, for the slow-message log.

Unlike ``collect`` (one collector per API job, shown by the API), this keeps the runs of
whatever message is being handled, so a message found slow can be logged with the chains
it ran. A message handled in-process runs in a task created from its sender's context:
each log links to the one of the message that caused it, and a run is recorded in every
log up that line, so a slow API message shows the chains of the messages it sent too.
"""

from __future__ import annotations

from contextlib import suppress
from contextvars import ContextVar, Token

from zstackpy.core.flow.trace import FlowTrace

__all__ = ["MessageRuns", "begin", "record"]

# A message that runs more chains than this is described well enough by its first ones.
RUNS_PER_MESSAGE = 16
# Bounds the walk up the line of messages (and a runaway recursion's cost).
MAX_DEPTH = 8

_current: ContextVar[MessageRuns | None] = ContextVar("message_chain_runs", default=None)


class MessageRuns:
    __slots__ = ("_token", "is_open", "parent", "traces")

    def __init__(self, parent: MessageRuns | None) -> None:
        self.parent = parent
        self.traces: list[FlowTrace] = []
        self.is_open = True
        self._token: Token[MessageRuns | None] | None = None

    def close(self) -> list[FlowTrace]:
        """The message was handled: later runs (of tasks it left running) are not its own.
        Called in the task that called ``begin``, it also gives that task back the record
        it had before."""
        self.is_open = False
        if self._token is not None:
            # ValueError: another context, with nothing of ours to undo.
            with suppress(ValueError):
                _current.reset(self._token)
            self._token = None
        return self.traces


def begin() -> MessageRuns:
    """Start recording for the message handled in the current task."""
    runs = MessageRuns(_current.get())
    runs._token = _current.set(runs)
    return runs


def record(trace: FlowTrace) -> None:
    """Called when a chain run starts (the trace fills in as it goes)."""
    runs = _current.get()
    depth = 0
    while runs is not None and depth < MAX_DEPTH:
        if runs.is_open and len(runs.traces) < RUNS_PER_MESSAGE:
            runs.traces.append(trace)
        runs = runs.parent
        depth += 1
