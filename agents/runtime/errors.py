"""Exceptions a command handler raises, and the one ``AgentRuntime.report`` raises."""

from __future__ import annotations


class AgentCommandError(Exception):
    """An expected command failure: the node gets ``{"success": false, "error": <text>}``.

    Raise it from a handler with a message an operator can act on ("no free memory: ...").
    Any other exception is a bug in the handler: the node gets ``"<ExcType>: <msg>"`` and
    the traceback is logged.

    ``details`` (JSON values) travel beside the text as the result's ``details`` field,
    so the node can branch on them (the KVM agent puts libvirt's error code there).
    """

    def __init__(self, error: str, **details: object) -> None:
        super().__init__(error)
        self.error = error
        self.details = details


class ReportError(Exception):
    """``AgentRuntime.report`` could not deliver: no ``sendCommandUrl`` learned yet, the
    node could not be reached, or it answered with an HTTP error."""
