"""Bodies the bus cannot decode: an error reply if someone waits, a dead letter always, and
the node keeps serving."""

from __future__ import annotations

import asyncio

import pytest

from tests.contract.conftest import Cluster
from tests.contract.messages import ContractEchoMsg, ContractEchoReply
from tests.contract.test_calls import serve_echo
from zstackpy.core.bus import Envelope, Kind, Message, Reply, decode
from zstackpy.core.errors import SysErr
from zstackpy.core.ids import new_uuid

BAD = {
    "bad-json": ("ContractEchoMsg", b"{not json"),
    "unknown-type": ("ContractNoSuchMsg", b"{}"),
    "failed-validation": ("ContractStrictMsg", b'{"count": "many"}'),
}


def reply_of(env: Envelope) -> Reply:
    body = env.body if isinstance(env.body, Message) else decode(env.type_name, env.body)
    assert isinstance(body, Reply)
    return body


@pytest.mark.parametrize("bad", list(BAD))
async def test_undecodable_message_is_answered_dead_lettered_and_survived(
    cluster: Cluster, bad: str
) -> None:
    a, b = await cluster.start(2)
    await serve_echo(b)
    prober, transport, sink = await cluster.raw_endpoint()
    type_name, body = BAD[bad]

    def raw(*, wants_reply: bool) -> Envelope:
        return Envelope(
            kind=Kind.MESSAGE,
            type_name=type_name,
            message_id=new_uuid(),
            source_node=prober,
            body=body,
            service=ContractEchoMsg.service,
            reply_to=prober if wants_reply else None,
        )

    asked = raw(wants_reply=True)
    await transport.send(b.node_uuid, asked)
    await transport.send(b.node_uuid, raw(wants_reply=False))

    answer = await asyncio.wait_for(sink.replies.get(), 10)
    assert answer.correlation_id == asked.message_id
    reply = reply_of(answer)
    assert not reply.success
    assert reply.error is not None
    assert reply.error.code == SysErr.INVALID_ARGUMENT
    assert reply.error.details["message_type"] == type_name

    async with asyncio.timeout(10):
        while len(letters := await cluster.dead_letters()) < 2:
            await asyncio.sleep(0.05)
    assert [(d.type_name, d.body) for d in letters] == [(type_name, body)] * 2
    assert b.stats.undecodable == 2

    after = await a.call(ContractEchoMsg(value=3), node=b.node_uuid, timeout=10)
    assert isinstance(after, ContractEchoReply)
    assert after.value == 3
    assert sink.replies.empty()
