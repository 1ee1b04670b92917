"""The shape of a simulated command and the helpers the command modules share."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from agents.runtime import AgentCommandError

if TYPE_CHECKING:
    from simulator.machine import Machine

SimFn = Callable[["Machine", dict[str, Any]], dict[str, Any]]


@dataclass(frozen=True, slots=True)
class SimCommand:
    """A simulated command: ``fn`` changes the machine and returns the response fields,
    raising AgentCommandError for a refusal. It is not async, so it runs whole: no other
    command sees the machine half-changed."""

    fn: SimFn
    sync: bool = False


def field_str(cmd: dict[str, Any], name: str) -> str:
    """A required non-empty string field of the command; AgentCommandError otherwise."""
    value = cmd.get(name)
    if not isinstance(value, str) or not value:
        raise AgentCommandError(f"the command needs a non-empty string {name!r}")
    return value


def field_int(cmd: dict[str, Any], name: str, *, default: int | None = None) -> int:
    """A required (or defaulted) non-negative integer field; AgentCommandError otherwise."""
    value = cmd.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise AgentCommandError(f"the command needs a non-negative integer {name!r}")
    return value


def gib(size: int) -> str:
    return f"{size / 1024**3:.1f} GiB"


def store_file(files: dict[str, int], used: int, capacity: int, path: str, size: int) -> int:
    """Put ``path`` of ``size`` bytes into ``files`` (replacing a file already there);
    return the new used total. Raises AgentCommandError when it does not fit."""
    freed = files.get(path, 0)
    if used - freed + size > capacity:
        free = capacity - used + freed
        raise AgentCommandError(
            f"not enough space for {path}: {gib(size)} wanted, {gib(free)} free"
        )
    files[path] = size
    return used - freed + size
