"""Management-node membership: join/leave events and the takeover extension point."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Protocol

from zstackpy.core.bus.message import Event
from zstackpy.core.ring import Ring


class ManagementNodeJoinedEvent(Event):
    service: ClassVar[str] = "managementNode"
    node_uuid: str
    host_name: str = ""
    port: int = 0


class ManagementNodeLeftEvent(Event):
    service: ClassVar[str] = "managementNode"
    node_uuid: str
    reason: str = ""


@dataclass(frozen=True)
class RingChange:
    """What changed in the ring, seen from ``this_node``; given to every takeover hook."""

    this_node: str
    joined: frozenset[str]
    left: frozenset[str]
    ring: Ring

    def owns(self, resource_uuid: str) -> bool:
        """True when ``resource_uuid`` now hashes to this node."""
        return self.ring.owner(resource_uuid) == self.this_node


class NodeTakeover(Protocol):
    """Called on every node after the ring changed (a node joined or left).

    Implementations adopt the resources that now hash to this node: reconnect their hosts,
    resume or fail their unfinished jobs. Runs outside any resource queue; queue the work.
    """

    async def take_over(self, change: RingChange) -> None: ...
