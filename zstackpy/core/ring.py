"""The consistent-hash ring of live management nodes (a uhashring behind a small API).

Every node keeps its own copy, rebuilt from join/leave events and the heartbeat table; a
resource UUID hashes to the node that owns it, so no node needs to ask where to send.
"""

from __future__ import annotations

from collections.abc import Iterable

from uhashring import HashRing


class Ring:
    def __init__(self, nodes: Iterable[str] = ()) -> None:
        self._ring = HashRing(nodes=sorted(set(nodes)), hash_fn="ketama")
        self._nodes: set[str] = set(nodes)

    @property
    def nodes(self) -> frozenset[str]:
        return frozenset(self._nodes)

    def __contains__(self, node_uuid: object) -> bool:
        return node_uuid in self._nodes

    def add(self, node_uuid: str) -> bool:
        """Add a node; False if it was already there."""
        if node_uuid in self._nodes:
            return False
        self._nodes.add(node_uuid)
        self._ring.add_node(node_uuid)
        return True

    def remove(self, node_uuid: str) -> bool:
        """Remove a node; False if it was not there."""
        if node_uuid not in self._nodes:
            return False
        self._nodes.discard(node_uuid)
        self._ring.remove_node(node_uuid)
        return True

    def is_owner(self, node_uuid: str, resource_uuid: str) -> bool:
        """True when ``resource_uuid`` hashes to ``node_uuid``; an empty ring (the node is
        leaving or fenced) gives nobody anything."""
        return bool(self._nodes) and self.owner(resource_uuid) == node_uuid

    def owner_without(self, node_uuid: str, resource_uuid: str) -> str | None:
        """The node ``resource_uuid`` will hash to once ``node_uuid`` has left; None when
        no other node is left. Builds a ring: for rare paths (a node handing work over)."""
        others = self._nodes - {node_uuid}
        return Ring(others).owner(resource_uuid) if others else None

    def owner(self, resource_uuid: str) -> str:
        if not self._nodes:
            raise LookupError("the ring is empty")
        node: str = self._ring.get_node(resource_uuid)
        return node
