"""Ring ownership: every resource has exactly one owner among the nodes; an empty ring
(a node leaving or fenced) gives nobody anything."""

from __future__ import annotations

from zstackpy.core.ids import new_uuid
from zstackpy.core.ring import Ring


def test_each_resource_has_exactly_one_owner() -> None:
    nodes = [new_uuid() for _ in range(3)]
    ring = Ring(nodes)
    for _ in range(50):
        resource = new_uuid()
        owners = [n for n in nodes if ring.is_owner(n, resource)]
        assert owners == [ring.owner(resource)]


def test_an_empty_ring_owns_nothing() -> None:
    node = new_uuid()
    ring = Ring([node])
    ring.remove(node)
    assert not ring.is_owner(node, new_uuid())
