"""Calls and replies: success, typed replies, errors, timeouts, fan-out limits, no-route."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from tests.contract.conftest import Cluster, eventually, uuid_owned_by
from tests.contract.messages import (
    ContractEchoMsg,
    ContractEchoReply,
    ContractFailMsg,
    ContractNobodyMsg,
    ContractNodeReply,
    ContractNoteMsg,
    ContractRouteMsg,
    ContractSlowMsg,
)
from zstackpy.core.bus import CloudBus, Message, Reply
from zstackpy.core.errors import ErrorInfo, SysErr, ZError


async def serve_echo(bus: CloudBus) -> None:
    async def echo(msg: Message) -> Reply:
        assert isinstance(msg, ContractEchoMsg)
        return ContractEchoReply(value=msg.value, node=bus.node_uuid)

    await bus.register(ContractEchoMsg.service, echo)


async def test_call_gets_the_remote_reply(cluster: Cluster) -> None:
    a, b = await cluster.start(2)
    await serve_echo(b)
    await serve_echo(a)

    remote = await a.call(ContractEchoMsg(value=7, text="héllo"), node=b.node_uuid)
    local = await a.call(ContractEchoMsg(value=8))

    assert isinstance(remote, ContractEchoReply)
    assert (remote.success, remote.value, remote.node) == (True, 7, b.node_uuid)
    assert isinstance(local, ContractEchoReply)
    assert (local.value, local.node) == (8, a.node_uuid)
    assert a.in_flight() == 0


async def test_request_returns_the_typed_reply(cluster: Cluster) -> None:
    a, b = await cluster.start(2)

    async def route(msg: Message) -> Reply:
        assert isinstance(msg, ContractRouteMsg)
        return ContractNodeReply(node=b.node_uuid, value=msg.value * 2)

    await b.register(ContractRouteMsg.service, route)
    owned_by_b = uuid_owned_by(a.ring, b.node_uuid)

    reply = await a.request(ContractRouteMsg(resource_uuid=owned_by_b, value=21), ContractNodeReply)

    assert (reply.node, reply.value) == (b.node_uuid, 42)
    with pytest.raises(ZError) as wrong_type:
        await a.request(ContractRouteMsg(resource_uuid=owned_by_b), ContractEchoReply)
    assert wrong_type.value.code == SysErr.INTERNAL


async def test_error_reply_keeps_code_description_details_and_cause(cluster: Cluster) -> None:
    a, b = await cluster.start(2)
    cause = ErrorInfo(code="CONTRACT.1002", description="disk full", details={"free": 0})

    async def fail(msg: Message) -> Reply:
        assert isinstance(msg, ContractFailMsg)
        if msg.unexpected:
            raise RuntimeError("boom")
        raise ZError("CONTRACT.1001", "refused", cause=cause, answer=42, nested={"a": [1, 2]})

    await b.register(ContractFailMsg.service, fail)

    reply = await a.call(ContractFailMsg(), node=b.node_uuid)
    with pytest.raises(ZError) as raised:
        await a.request(ContractFailMsg(), Reply, node=b.node_uuid)
    unexpected = await a.call(ContractFailMsg(unexpected=True), node=b.node_uuid)

    assert not reply.success
    assert reply.error == ErrorInfo(
        code="CONTRACT.1001",
        description="refused",
        details={"answer": 42, "nested": {"a": [1, 2]}},
        cause=cause,
    )
    assert (raised.value.code, raised.value.details["answer"]) == ("CONTRACT.1001", 42)
    assert not unexpected.success
    assert unexpected.error is not None
    assert unexpected.error.code == SysErr.INTERNAL
    assert unexpected.error.details["exception"] == "RuntimeError"


async def test_timeout_then_late_reply_is_ignored(
    cluster: Cluster, caplog: pytest.LogCaptureFixture
) -> None:
    a, b = await cluster.start(2)
    release = asyncio.Event()
    answered = asyncio.Event()

    async def slow(msg: Message) -> Reply:
        await release.wait()
        answered.set()
        return Reply()

    await b.register(ContractSlowMsg.service, slow)
    replies_before = a.stats.replies

    started = time.monotonic()
    reply = await a.call(ContractSlowMsg(), node=b.node_uuid, timeout=0.3)
    elapsed = time.monotonic() - started

    assert not reply.success
    assert reply.error is not None
    assert reply.error.code == SysErr.TIMEOUT
    assert 0.3 <= elapsed < 3
    assert a.in_flight() == 0
    assert a.stats.timeouts == 1

    caplog.set_level(logging.WARNING)
    release.set()
    await asyncio.wait_for(answered.wait(), 10)
    await eventually(lambda: a.stats.replies > replies_before, what="the late reply arrives")
    assert a.in_flight() == 0
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_a_thousand_concurrent_calls_are_all_answered(cluster: Cluster) -> None:
    a, b = await cluster.start(2)
    await serve_echo(b)

    replies = await asyncio.gather(
        *(a.call(ContractEchoMsg(value=i), node=b.node_uuid, timeout=60) for i in range(1000))
    )

    assert [r.value for r in replies if isinstance(r, ContractEchoReply)] == list(range(1000))
    assert {r.node for r in replies if isinstance(r, ContractEchoReply)} == {b.node_uuid}
    assert a.in_flight() == 0


async def test_call_many_keeps_its_parallelism_and_order(cluster: Cluster) -> None:
    a, b = await cluster.start(2)
    running = 0
    most = 0

    async def route(msg: Message) -> Reply:
        nonlocal running, most
        assert isinstance(msg, ContractRouteMsg)
        running += 1
        most = max(most, running)
        try:
            await asyncio.sleep(0.02)
        finally:
            running -= 1
        return ContractNodeReply(node=b.node_uuid, value=msg.value)

    await b.register(ContractRouteMsg.service, route)
    owned_by_b = uuid_owned_by(a.ring, b.node_uuid)
    msgs = [ContractRouteMsg(resource_uuid=owned_by_b, value=i) for i in range(40)]

    replies = await a.call_many(msgs, parallelism=5)

    assert [r.value for r in replies if isinstance(r, ContractNodeReply)] == list(range(40))
    assert 3 <= most <= 5


async def test_send_reaches_the_handler(cluster: Cluster) -> None:
    a, b = await cluster.start(2)
    got: asyncio.Queue[int] = asyncio.Queue()

    async def note(msg: Message) -> None:
        assert isinstance(msg, ContractNoteMsg)
        got.put_nowait(msg.value)

    await b.register(ContractNoteMsg.service, note)

    await a.send(ContractNoteMsg(resource_uuid=uuid_owned_by(a.ring, b.node_uuid), value=5))

    assert await asyncio.wait_for(got.get(), 10) == 5
    assert a.in_flight() == 0


async def test_a_service_nobody_serves_is_an_error_not_a_hang(cluster: Cluster) -> None:
    a, b = await cluster.start(2)

    started = time.monotonic()
    remote = await a.call(ContractNobodyMsg(), node=b.node_uuid, timeout=30)
    local = await a.call(ContractNobodyMsg(), timeout=30)
    with pytest.raises(ZError) as send_error:
        await a.send(ContractNoteMsg(resource_uuid=uuid_owned_by(a.ring, b.node_uuid)))

    assert time.monotonic() - started < 5
    assert remote.error is not None
    assert remote.error.code == SysErr.UNDELIVERABLE
    assert local.error is not None
    assert local.error.code == SysErr.NO_ROUTE
    assert send_error.value.code == SysErr.UNDELIVERABLE
    assert a.in_flight() == 0


async def test_a_calls_deadline_carries_to_the_calls_its_handler_makes(cluster: Cluster) -> None:
    """A handler's own calls without a timeout wait what is left of the deadline of the
    message it serves (when that is longer than the bus default), across nodes; a call
    with no deadline behind it keeps the default."""
    a, b = await cluster.start(2, default_timeout=0.3)

    async def slow(msg: Message) -> Reply:
        await asyncio.sleep(0.8)  # longer than the default, shorter than the deadline
        return ContractEchoReply(value=1, node=b.node_uuid)

    async def relay(msg: Message) -> Reply:
        assert isinstance(msg, ContractRouteMsg)
        return await b.call(ContractSlowMsg(), node=a.node_uuid)

    await a.register(ContractSlowMsg.service, slow)
    await b.register(ContractRouteMsg.service, relay)
    owned_by_b = uuid_owned_by(a.ring, b.node_uuid)

    relayed = await a.call(ContractRouteMsg(resource_uuid=owned_by_b), timeout=5.0)
    assert relayed.success, relayed.error

    direct = await b.call(ContractSlowMsg(), node=a.node_uuid)
    assert not direct.success
    assert direct.error is not None
    assert direct.error.code == SysErr.TIMEOUT
