"""The bus contract suite's cluster: N CloudBus nodes in one process, on either transport.

``inproc``: every node shares one InProcBroker. ``amqp``: every node has its own connection
to the real RabbitMQ, in a vhost made for the test and deleted after it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field

import aio_pika
import pytest

from tests.support.rabbit import fresh_vhost, require_rabbitmq
from zstackpy.core.bus import CloudBus, Envelope, Transport
from zstackpy.core.bus.amqp import AmqpTransport
from zstackpy.core.bus.amqp_wire import DEAD_LETTER_QUEUE
from zstackpy.core.bus.inproc import InProcBroker, InProcTransport
from zstackpy.core.ids import new_uuid
from zstackpy.core.ring import Ring

TRANSPORTS = ["inproc", "amqp"]


@dataclass(frozen=True, slots=True)
class DeadLetter:
    type_name: str
    body: bytes


class RecordingSink:
    """A bare transport endpoint for injecting raw envelopes and catching what comes back."""

    def __init__(self) -> None:
        self.replies: asyncio.Queue[Envelope] = asyncio.Queue()

    async def on_message(self, env: Envelope) -> None:
        raise AssertionError(f"the recording sink serves nothing, got {env.type_name}")

    def on_reply(self, env: Envelope) -> None:
        self.replies.put_nowait(env)

    async def on_event(self, env: Envelope) -> None:
        return None


@dataclass
class Cluster:
    kind: str
    url: str | None = None
    broker: InProcBroker = field(default_factory=InProcBroker)
    nodes: list[CloudBus] = field(default_factory=list)
    stack: AsyncExitStack = field(default_factory=AsyncExitStack)

    def transport(self) -> Transport:
        if self.kind == "amqp":
            assert self.url is not None
            return AmqpTransport(self.url)
        return InProcTransport(self.broker)

    async def start(self, n: int, *, default_timeout: float = 30.0) -> list[CloudBus]:
        """Start ``n`` nodes, each with its own ring holding every node."""
        uuids = [new_uuid() for _ in range(n)]
        for node_uuid in uuids:
            bus = CloudBus(
                node_uuid, self.transport(), Ring(uuids), default_timeout=default_timeout
            )
            await bus.start()
            self.stack.push_async_callback(bus.stop)
            self.nodes.append(bus)
        return list(self.nodes)

    async def raw_endpoint(self) -> tuple[str, Transport, RecordingSink]:
        """A started transport outside the ring, with a sink that records replies."""
        node_uuid, transport, sink = new_uuid(), self.transport(), RecordingSink()
        await transport.start(node_uuid, sink)
        self.stack.push_async_callback(transport.stop)
        return node_uuid, transport, sink

    async def dead_letters(self) -> list[DeadLetter]:
        """Everything dead-lettered so far (AMQP: drained from the dead-letter queue)."""
        if self.kind == "inproc":
            return [
                DeadLetter(env.type_name, env.body if isinstance(env.body, bytes) else b"")
                for env in self.broker.dead_letters
            ]
        assert self.url is not None
        found: list[DeadLetter] = []
        conn = await aio_pika.connect(self.url)
        async with conn:
            channel = await conn.channel()
            queue = await channel.declare_queue(DEAD_LETTER_QUEUE, passive=True)
            while (msg := await queue.get(no_ack=False, fail=False)) is not None:
                found.append(DeadLetter(msg.type or "", msg.body))
            # Not acked: they go back when the channel closes, so later calls see them too.
        return found


@pytest.fixture(params=TRANSPORTS)
def transport_kind(request: pytest.FixtureRequest) -> str:
    kind: str = request.param
    if kind == "amqp":
        require_rabbitmq()
    return kind


@pytest.fixture
async def cluster(transport_kind: str) -> AsyncIterator[Cluster]:
    async with AsyncExitStack() as outer:
        url = await outer.enter_async_context(fresh_vhost()) if transport_kind == "amqp" else None
        c = Cluster(kind=transport_kind, url=url)
        # Nodes stop (LIFO) before the vhost goes away.
        async with c.stack:
            yield c


async def eventually(
    predicate: Callable[[], bool | Awaitable[bool]], *, timeout: float = 10.0, what: str = ""
) -> None:
    """Poll until ``predicate`` holds; fail after ``timeout`` seconds."""
    try:
        async with asyncio.timeout(timeout):
            while True:
                result = predicate()
                if not isinstance(result, bool):
                    result = await result
                if result:
                    return
                await asyncio.sleep(0.02)
    except TimeoutError:
        raise AssertionError(f"not reached within {timeout}s: {what}") from None


def uuid_owned_by(ring: Ring, node_uuid: str) -> str:
    """A resource uuid that ``ring`` assigns to ``node_uuid``."""
    while True:
        candidate = new_uuid()
        if ring.owner(candidate) == node_uuid:
            return candidate
