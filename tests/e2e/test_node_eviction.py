"""Eviction among live nodes: only a node whose heartbeat row really went is announced
gone, and the node that evicts keeps its own place while the takeover runs."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from sqlalchemy import event

from tests.e2e.test_node_embedded import _set_config
from tests.support.probe_plugin import ProbeService
from tests.support.slow_takeover_plugin import HOOK_S, SlowTakeover
from zstackpy.core.bus.inproc import InProcTransport
from zstackpy.core.membership import NodeTakeover
from zstackpy.node.node import ManagementNode, NodeState

Start = Callable[..., Any]
PROBE = "tests.support.probe_plugin:plugin"
SLOW = "tests.support.slow_takeover_plugin:plugin"
INTERVAL_S = 0.2
WINDOW_S = INTERVAL_S * 3


async def crash(node: ManagementNode) -> None:
    """Stop beating (its row stays, as after kill -9) and answering, without leaving."""
    assert node.heartbeat is not None
    await node.heartbeat.stop(leave=False)
    transport = node.context.bus.transport
    assert isinstance(transport, InProcTransport)
    transport.broker.cancel(node.context.bus)


async def test_the_evicting_node_keeps_its_place_while_a_slow_takeover_runs(
    start_node: Start,
) -> None:
    """Takeover hooks used to run in the heartbeat's round: a node that evicted another
    stopped beating for as long as they took (seconds under load) and the others evicted
    it in turn, until one node was left."""
    a = await start_node(plugins=[SLOW])
    await _set_config(a, "node", "heartbeatInterval", str(INTERVAL_S))
    b = await start_node(plugins=[SLOW])
    c = await start_node(plugins=[SLOW])
    await crash(c)

    async def c_taken_over() -> None:
        while not all(c.uuid in hook(n).handled for n in (a, b)):
            await asyncio.sleep(0.05)

    await asyncio.wait_for(c_taken_over(), HOOK_S + 10 * WINDOW_S)

    for node in (a, b):
        assert node.state is NodeState.READY, node.state
        assert node.context.ring.nodes == {a.uuid, b.uuid}


async def test_a_node_that_beats_again_before_the_delete_is_not_announced_gone(
    start_node: Start,
) -> None:
    """The eviction deletes a silent node's row only if its heartbeat is still old; a node
    that beat between the read and the delete keeps its row, and used to be announced
    evicted anyway: its calls failed, its jobs failed and its resources were taken over
    while it served on."""
    a = await start_node(plugins=[PROBE])
    await _set_config(a, "node", "heartbeatInterval", str(INTERVAL_S))
    b = await start_node(plugins=[PROBE])
    assert b.heartbeat is not None
    await b.heartbeat.stop(leave=False)  # its row goes stale...
    raced = asyncio.Event()

    def beat_just_before_the_delete(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        # ...and it beats (far ahead, so no later round finds it stale) as a deletes.
        deletes_a_row = statement.lstrip().upper().startswith("DELETE")
        if deletes_a_row and "ManagementNodeVO" in statement and not raced.is_set():
            conn.exec_driver_sql(
                'UPDATE "ManagementNodeVO" SET heartbeat = heartbeat + 3600 WHERE uuid = ?',
                (b.uuid,),
            )
            raced.set()

    engine = a.context.db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", beat_just_before_the_delete)
    try:
        await asyncio.wait_for(raced.wait(), 10 * WINDOW_S)
        await asyncio.sleep(5 * WINDOW_S)  # what an announced eviction would have caused
    finally:
        event.remove(engine, "before_cursor_execute", beat_just_before_the_delete)

    probe = hook(a, ProbeService)
    assert b.uuid in a.context.ring
    assert b.uuid not in probe.left


def hook(node: ManagementNode, kind: type[Any] = SlowTakeover) -> Any:
    return next(h for h in node.context.plugins.extensions(NodeTakeover) if isinstance(h, kind))
