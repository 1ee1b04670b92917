"""A draining node's bus: what other nodes' messages meet once it turns them away, and the
answer a caller gets when the drain ends before the handler working for it."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from tests.contract.conftest import Cluster, eventually, uuid_owned_by
from tests.contract.messages import (
    ContractEchoMsg,
    ContractNodeReply,
    ContractNoteMsg,
    ContractRouteMsg,
    ContractSlowMsg,
)
from zstackpy.core.bus import CloudBus, Message, Reply
from zstackpy.core.errors import SysErr


async def test_a_handler_still_at_work_when_the_drain_ends_is_cut_off_with_an_answer(
    cluster: Cluster,
) -> None:
    """The caller hears at once that the outcome is unknown (SYS.1012), instead of waiting
    for its timeout or for the node to leave; the handler, and what it asked of its own
    node, stop there."""
    a, b = await cluster.start(2)
    at_work, cancelled = asyncio.Event(), []

    async def local_step(msg: Message) -> Reply:
        try:
            at_work.set()
            await asyncio.Event().wait()  # never ends by itself
        except asyncio.CancelledError:
            cancelled.append("local step")
            raise
        raise AssertionError("unreachable")

    async def slow(msg: Message) -> Reply:
        try:
            return await b.call(ContractEchoMsg(), timeout=60)  # served by local_step
        except asyncio.CancelledError:
            cancelled.append("handler")
            raise

    await b.register(ContractSlowMsg.service, slow)
    await b.register(ContractEchoMsg.service, local_step)
    started = time.monotonic()
    call = asyncio.create_task(a.call(ContractSlowMsg(), node=b.node_uuid, timeout=60))
    await asyncio.wait_for(at_work.wait(), 10)

    assert await b.quiesce("it is draining", 0.2) == 2  # the handler and its local step
    assert await b.cut_off("its drain timeout ended") == 2
    reply = await asyncio.wait_for(call, 10)

    assert time.monotonic() - started < 10
    assert reply.error is not None
    assert reply.error.code == SysErr.MANAGEMENT_NODE_UNAVAILABLE
    assert "its outcome is unknown" in reply.error.description
    assert "its drain timeout ended" in reply.error.description
    assert reply.error.details["reason"] == "drained"
    assert sorted(cancelled) == ["handler", "local step"]
    assert a.in_flight() == 0


async def test_a_handler_that_ended_in_time_answers_as_usual(cluster: Cluster) -> None:
    a, b = await cluster.start(2)

    async def quick(msg: Message) -> Reply:
        await asyncio.sleep(0.1)
        return ContractNodeReply(node=b.node_uuid)

    await b.register(ContractRouteMsg.service, quick)
    call = asyncio.create_task(
        a.call(ContractRouteMsg(resource_uuid=uuid_owned_by(a.ring, b.node_uuid)), timeout=30)
    )
    await eventually(lambda: b.stats.received > 0, what="b took the call")

    assert await b.quiesce("it is draining", 10) == 0
    assert await b.cut_off("its drain timeout ended") == 0
    reply = await asyncio.wait_for(call, 10)
    assert isinstance(reply, ContractNodeReply), reply
    # Turned away from now on, with the drain's reason.
    late = await a.call(ContractRouteMsg(resource_uuid=uuid_owned_by(a.ring, b.node_uuid)))
    assert late.error is not None
    assert late.error.code == SysErr.MANAGEMENT_NODE_UNAVAILABLE


async def test_a_message_without_reply_goes_to_the_next_owner_of_its_resource(
    cluster: Cluster,
) -> None:
    """Its sender expects no answer, so a draining node that took it would lose it with
    its stop: it goes on to the node the resource hashes to once the drained one left."""
    a, b, c = await cluster.start(3)
    got: asyncio.Queue[tuple[str, int]] = asyncio.Queue()
    for bus in (a, b, c):

        async def note(msg: Message, bus: CloudBus = bus) -> None:
            assert isinstance(msg, ContractNoteMsg)
            got.put_nowait((bus.node_uuid, msg.value))

        await bus.register(ContractNoteMsg.service, note)
    await b.quiesce("it is draining", 0)

    for value in range(6):
        resource = uuid_owned_by(a.ring, b.node_uuid)
        await a.send(ContractNoteMsg(resource_uuid=resource, value=value))
        node, seen = await asyncio.wait_for(got.get(), 10)
        assert seen == value
        assert node == a.ring.owner_without(b.node_uuid, resource)
        assert node != b.node_uuid


async def test_a_message_handed_over_to_a_node_draining_too_is_refused_with_a_reason(
    cluster: Cluster, caplog: pytest.LogCaptureFixture
) -> None:
    a, b, c = await cluster.start(3)
    got: list[str] = []
    for bus in (a, b, c):

        async def note(msg: Message, bus: CloudBus = bus) -> None:
            got.append(bus.node_uuid)

        await bus.register(ContractNoteMsg.service, note)
    await b.quiesce("it is draining", 0)
    await c.quiesce("it is draining", 0)
    resource = uuid_owned_by(a.ring, b.node_uuid)
    while a.ring.owner_without(b.node_uuid, resource) != c.node_uuid:
        resource = uuid_owned_by(a.ring, b.node_uuid)
    caplog.set_level(logging.WARNING, logger="zstackpy.core.bus.bus")

    await a.send(ContractNoteMsg(resource_uuid=resource, value=1))

    def refused() -> bool:
        return any("handed it over already" in r.getMessage() for r in caplog.records)

    await eventually(refused, what="c refused what b handed over")
    assert got == []
