"""Cascade: deleting a parent deletes its children first, in a defined order, or nothing.

Each resource type that belongs to another implements ``CascadeParticipant`` (registered as
an extension by its plugin). Deleting a parent walks the tree level by level, asks every
participant to check its children (Permissive mode: any refusal stops everything before a
single row is deleted), then deletes the deepest level first, each participant through
messages to its own service so every child is deleted inside its own queue.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from zstackpy.core.errors import SysErr, ZError

# A parent-child chain deeper than this is a cycle in the participants' declarations.
_MAX_DEPTH = 32


class DeleteMode(StrEnum):
    PERMISSIVE = "Permissive"  # children may refuse; the delete then stops with their error
    ENFORCING = "Enforcing"  # no checks: children are deleted whatever they say


@dataclass(frozen=True, slots=True)
class CascadeChildren:
    resource_type: str  # e.g. "ClusterVO"
    uuids: tuple[str, ...]


class CascadeParticipant(Protocol):
    async def cascade_children(
        self, parent_type: str, parent_uuids: tuple[str, ...]
    ) -> CascadeChildren | None:
        """The children of these parents that this participant owns; None if it owns none."""

    async def cascade_check(self, children: CascadeChildren) -> None:
        """Raise ZError to refuse deleting these children (Permissive mode only)."""

    async def cascade_delete(self, children: CascadeChildren, mode: DeleteMode) -> None:
        """Delete these children (their own children are already gone)."""


async def cascade_delete(
    participants: Iterable[CascadeParticipant],
    parent_type: str,
    parent_uuids: Iterable[str],
    mode: DeleteMode,
) -> int:
    """Delete everything below the parents (not the parents themselves); returns how many
    children were deleted. Raises ZError(SYS.1004) naming the refusing children."""
    members = list(participants)
    roots = tuple(parent_uuids)
    levels: list[list[tuple[CascadeParticipant, CascadeChildren]]] = []
    frontier = [(parent_type, roots)]
    while frontier:
        if len(levels) >= _MAX_DEPTH:
            raise ZError(
                SysErr.INTERNAL, "cascade deeper than 32 levels: a cycle?", parent_type=parent_type
            )
        level = []
        for ptype, uuids in frontier:
            for member in members:
                children = await member.cascade_children(ptype, uuids)
                if children is not None and children.uuids:
                    level.append((member, children))
        if not level:
            break
        levels.append(level)
        frontier = [(c.resource_type, c.uuids) for _, c in level]

    if mode is DeleteMode.PERMISSIVE:
        for level in levels:
            for member, children in level:
                try:
                    await member.cascade_check(children)
                except ZError as exc:
                    raise ZError(
                        SysErr.DELETE_RESOURCE,
                        f"cannot delete {parent_type} {', '.join(roots)}: "
                        f"{children.resource_type} refused: {exc.description}",
                        cause=exc.info(),
                        child_type=children.resource_type,
                        child_uuids=list(children.uuids),
                    ) from exc
    deleted = 0
    for level in reversed(levels):
        for member, children in level:
            await member.cascade_delete(children, mode)
            deleted += len(children.uuids)
    return deleted
