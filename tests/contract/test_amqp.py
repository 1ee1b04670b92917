"""What only the AMQP transport has: reconnects, consumer checks, queue arguments, and a
consumer that survives a failing bus."""

from __future__ import annotations

import asyncio
import json

import pytest

from tests.contract.conftest import Cluster, eventually
from tests.contract.messages import ContractEchoMsg, ContractEchoReply, ContractHappenedEvent
from tests.contract.test_calls import serve_echo
from tests.support.rabbit import close_connections, rabbitmqctl, vhost_of
from tests.support.real_server import require_server
from zstackpy.core.bus import CloudBus, Envelope, Kind, Undeliverable
from zstackpy.core.bus.amqp import AmqpTransport
from zstackpy.core.bus.amqp_wire import DEAD_LETTER_EXCHANGE, DEAD_LETTER_QUEUE
from zstackpy.core.bus.transport import event_queue, reply_queue, service_queue
from zstackpy.core.ids import new_uuid


@pytest.fixture
def transport_kind() -> str:
    require_server("RabbitMQ", "127.0.0.1", 5672)
    return "amqp"


def amqp(bus: CloudBus) -> AmqpTransport:
    assert isinstance(bus.transport, AmqpTransport)
    return bus.transport


async def echo_works(a: CloudBus, b: CloudBus) -> bool:
    reply = await a.call(ContractEchoMsg(value=1), node=b.node_uuid, timeout=2)
    return isinstance(reply, ContractEchoReply)


async def test_calls_and_events_work_again_after_the_broker_drops_every_connection(
    cluster: Cluster,
) -> None:
    a, b = await cluster.start(2)
    await serve_echo(b)
    events: asyncio.Queue[int] = asyncio.Queue()

    async def record(event: ContractHappenedEvent) -> None:
        events.put_nowait(event.value)

    await b.subscribe(ContractHappenedEvent, record)
    assert await echo_works(a, b)

    assert cluster.url is not None
    await close_connections(cluster.url)

    await eventually(
        lambda: amqp(a).reconnects >= 1 and amqp(b).reconnects >= 1, timeout=30, what="reconnect"
    )
    await eventually(lambda: echo_works(a, b), timeout=30, what="calls work again")
    replies = await asyncio.gather(
        *(a.call(ContractEchoMsg(value=i), node=b.node_uuid, timeout=30) for i in range(200))
    )
    assert [r.value for r in replies if isinstance(r, ContractEchoReply)] == list(range(200))
    await a.publish(ContractHappenedEvent(value=9))
    assert await asyncio.wait_for(events.get(), 10) == 9
    assert await amqp(a).ensure_consumers() == []
    assert await amqp(b).ensure_consumers() == []
    assert amqp(a).is_connected
    assert amqp(b).is_connected


async def test_a_lost_consumer_is_found_and_replaced(cluster: Cluster) -> None:
    a, b = await cluster.start(2)
    await serve_echo(b)
    name = service_queue(ContractEchoMsg.service, b.node_uuid)
    # Reaching in to play the broker losing a consumer without closing the connection.
    lost = amqp(b)._consumers[name]
    await lost.queue.cancel(lost.tag)

    assert await amqp(b).ensure_consumers() == [name]
    assert await echo_works(a, b)
    assert await amqp(b).ensure_consumers() == []


class FlakySink:
    """Fails on the first message and the first reply, then records."""

    def __init__(self) -> None:
        self.messages: asyncio.Queue[Envelope] = asyncio.Queue()
        self.replies: asyncio.Queue[Envelope] = asyncio.Queue()
        self.failed_message = False
        self.failed_reply = False

    async def on_message(self, env: Envelope) -> None:
        if not self.failed_message:
            self.failed_message = True
            raise RuntimeError("bus bug while taking a message")
        self.messages.put_nowait(env)

    def on_reply(self, env: Envelope) -> None:
        if not self.failed_reply:
            self.failed_reply = True
            raise RuntimeError("bus bug while taking a reply")
        self.replies.put_nowait(env)

    async def on_event(self, env: Envelope) -> None:
        return None


async def test_a_failing_sink_does_not_kill_the_consumer(cluster: Cluster) -> None:
    assert cluster.url is not None
    node, sender = new_uuid(), new_uuid()
    sink = FlakySink()
    target, source = AmqpTransport(cluster.url), AmqpTransport(cluster.url)
    await target.start(node, sink)
    cluster.stack.push_async_callback(target.stop)
    await source.start(sender, FlakySink())
    cluster.stack.push_async_callback(source.stop)
    await target.open_service("contract.raw")

    def envelope(kind: Kind, value: str) -> Envelope:
        return Envelope(
            kind=kind,
            type_name="ContractRawMsg",
            message_id=new_uuid(),
            source_node=sender,
            body=value.encode(),
            service="contract.raw",
            correlation_id=new_uuid() if kind is Kind.REPLY else None,
        )

    for value in ("first", "second"):
        await source.send(node, envelope(Kind.MESSAGE, value))
        await source.reply(node, envelope(Kind.REPLY, value))

    assert (await asyncio.wait_for(sink.messages.get(), 10)).body == b"second"
    assert (await asyncio.wait_for(sink.replies.get(), 10)).body == b"second"
    assert await cluster.dead_letters() != []
    with pytest.raises(Undeliverable):
        await source.send(new_uuid(), envelope(Kind.MESSAGE, "nowhere"))


async def test_node_queues_expire_and_dead_letter(cluster: Cluster) -> None:
    (a,) = await cluster.start(1)
    await serve_echo(a)
    assert cluster.url is not None

    listing = await rabbitmqctl(
        "list_queues",
        "-p",
        vhost_of(cluster.url),
        "name",
        "arguments",
        "auto_delete",
        "--formatter",
        "json",
    )
    # rabbitmqctl lists arguments as [name, type, value] triples.
    queues = {
        q["name"]: {
            "auto_delete": q["auto_delete"],
            "arguments": {k: v for k, _, v in q["arguments"]},
        }
        for q in json.loads(listing)
    }

    node_queues = [
        service_queue(ContractEchoMsg.service, a.node_uuid),
        reply_queue(a.node_uuid),
        event_queue(a.node_uuid),
    ]
    for name in node_queues:
        assert queues[name]["auto_delete"] is False
        assert queues[name]["arguments"]["x-expires"] >= 60_000
        assert queues[name]["arguments"]["x-dead-letter-exchange"] == DEAD_LETTER_EXCHANGE
    assert queues[DEAD_LETTER_QUEUE]["arguments"]["x-max-length"] > 0


async def _unacked(url: str) -> int:
    """Deliveries the broker still counts as unacknowledged, over the cluster's vhost."""
    listing = await rabbitmqctl(
        "list_queues", "-p", vhost_of(url), "name", "messages_unacknowledged", "--formatter", "json"
    )
    return sum(int(q["messages_unacknowledged"]) for q in json.loads(listing))


async def test_a_burst_is_acknowledged_in_few_frames_and_none_stays_unacked(
    cluster: Cluster,
) -> None:
    a, b = await cluster.start(2)
    await serve_echo(b)
    events: asyncio.Queue[int] = asyncio.Queue()

    async def record(event: ContractHappenedEvent) -> None:
        events.put_nowait(event.value)

    await b.subscribe(ContractHappenedEvent, record)
    assert cluster.url is not None
    frames = amqp(b).acks.frames
    calls = [a.call(ContractEchoMsg(value=i), node=b.node_uuid, timeout=30) for i in range(300)]
    publishes = [a.publish(ContractHappenedEvent(value=i)) for i in range(100)]
    replies, _ = await asyncio.gather(asyncio.gather(*calls), asyncio.gather(*publishes))
    assert [r.value for r in replies if isinstance(r, ContractEchoReply)] == list(range(300))
    assert sorted([await asyncio.wait_for(events.get(), 10) for _ in range(100)]) == list(
        range(100)
    )
    # 400 deliveries (300 requests, 100 events) settled in far fewer ack frames (25 here;
    # one per delivery before acks were batched)...
    sent = amqp(b).acks.frames - frames
    assert 0 < sent < 100, sent
    # ...and every one of them is settled at the broker.
    url = cluster.url

    async def settled() -> bool:
        return await _unacked(url) == 0

    await eventually(settled, timeout=20, what="every delivery acknowledged")


async def test_a_stopping_transport_acknowledges_what_it_took(cluster: Cluster) -> None:
    """An ack still waiting for its batch is sent before the connection closes: otherwise
    the broker would put the handled message back (on the shared portal queue another node
    would run it again)."""
    assert cluster.url is not None
    node, sender = new_uuid(), new_uuid()
    sink = FlakySink()
    sink.failed_message = True  # no failure: take every message
    target, source = AmqpTransport(cluster.url), AmqpTransport(cluster.url)
    await target.start(node, sink)
    await source.start(sender, FlakySink())
    cluster.stack.push_async_callback(source.stop)
    await target.open_service("contract.raw")
    env = Envelope(
        kind=Kind.MESSAGE,
        type_name="ContractRawMsg",
        message_id=new_uuid(),
        source_node=sender,
        body=b"once",
        service="contract.raw",
    )
    await source.send(node, env)
    assert (await asyncio.wait_for(sink.messages.get(), 10)).body == b"once"
    await target.stop()  # at once: the ack has not gone out yet

    listing = await rabbitmqctl(
        "list_queues", "-p", vhost_of(cluster.url), "name", "messages", "--formatter", "json"
    )
    left = {q["name"]: int(q["messages"]) for q in json.loads(listing)}
    assert left[service_queue("contract.raw", node)] == 0
