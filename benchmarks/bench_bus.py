"""CloudBus round trips per second: in-process, and over RabbitMQ next to bare aio-pika.

* ``local``: one node, in-process transport, a call to a service on the same node, beside
  ``local_bare``: a task per request and a future per reply, written directly in asyncio.
* ``amqp``: node A calls node B over the AMQP transport (two connections, one process).
* ``bare``: the same request/reply exchange written directly with aio-pika, measured in the
  same run: same body sizes, same in-flight levels, publisher confirms and ``mandatory`` on
  both requests and replies, manual acks on requests, auto-ack on replies (as ours).

The AMQP phases run in a fresh vhost, deleted afterwards; figures are medians of the rounds.
Prints one JSON line.
Usage: ``python benchmarks/bench_bus.py [--seconds S] [--payload BYTES] [--rounds N]``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import ClassVar

import aio_pika
from aio_pika.abc import AbstractIncomingMessage

# The vhost helper lives in tests/, which is not installed: run from a checkout.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.support.rabbit import fresh_vhost
from zstackpy.core.bus import CloudBus, Message, NeedReplyMessage, Reply, encode
from zstackpy.core.bus.amqp import AmqpTransport
from zstackpy.core.bus.inproc import InProcTransport
from zstackpy.core.ids import new_uuid
from zstackpy.core.ring import Ring

LEVELS = (1, 16, 256)
GOAL = 0.6


class BenchEchoMsg(NeedReplyMessage):
    service: ClassVar[str] = "bench.echo"
    payload: str = ""


class BenchEchoReply(Reply):
    payload: str = ""


async def echo(msg: Message) -> Reply:
    assert isinstance(msg, BenchEchoMsg)
    return BenchEchoReply(payload=msg.payload)


async def rate(one_call: Callable[[], Awaitable[None]], in_flight: int, seconds: float) -> float:
    """Round trips per second with ``in_flight`` callers looping for ``seconds``."""
    done = 0
    deadline = time.perf_counter() + seconds

    async def caller() -> None:
        nonlocal done
        while time.perf_counter() < deadline:
            await one_call()
            done += 1

    started = time.perf_counter()
    await asyncio.gather(*(caller() for _ in range(in_flight)))
    return done / (time.perf_counter() - started)


async def bench_local(payload: str, seconds: float) -> dict[str, float]:
    node = new_uuid()
    bus = CloudBus(node, InProcTransport(), Ring([node]))
    await bus.register(BenchEchoMsg.service, echo)
    await bus.start()
    msg = BenchEchoMsg(payload=payload)

    async def one() -> None:
        reply = await bus.call(msg)
        assert reply.success

    try:
        await rate(one, 16, 0.3)  # warm-up
        return {str(level): round(await rate(one, level, seconds)) for level in LEVELS}
    finally:
        await bus.stop()


async def bench_local_bare(payload: str, seconds: float) -> dict[str, float]:
    """Baseline for ``local``: the least an async request/reply can do in one process, a
    task per request running the same handler and a future for its reply."""
    msg = BenchEchoMsg(payload=payload)

    async def serve(future: asyncio.Future[Reply]) -> None:
        future.set_result(await echo(msg))

    async def one() -> None:
        future: asyncio.Future[Reply] = asyncio.get_running_loop().create_future()
        task = asyncio.create_task(serve(future))
        reply = await future
        assert reply.success
        del task

    await rate(one, 16, 0.3)  # warm-up
    return {str(level): round(await rate(one, level, seconds)) for level in LEVELS}


@asynccontextmanager
async def bus_pair(url: str, payload: str) -> AsyncIterator[Callable[[], Awaitable[None]]]:
    a_id, b_id = new_uuid(), new_uuid()
    a = CloudBus(a_id, AmqpTransport(url), Ring([a_id, b_id]))
    b = CloudBus(b_id, AmqpTransport(url), Ring([a_id, b_id]))
    await b.register(BenchEchoMsg.service, echo)
    await a.start()
    await b.start()
    msg = BenchEchoMsg(payload=payload)

    async def one() -> None:
        reply = await a.call(msg, node=b_id)
        assert reply.success, reply.error

    try:
        yield one
    finally:
        await a.stop()
        await b.stop()


@asynccontextmanager
async def bare_pair(url: str, payload: str) -> AsyncIterator[Callable[[], Awaitable[None]]]:
    """Request/reply written straight on aio-pika, shaped like the bus's traffic."""
    request_body = encode(BenchEchoMsg(payload=payload))
    reply_body = encode(BenchEchoReply(payload=payload))
    server = await aio_pika.connect_robust(url)
    client = await aio_pika.connect_robust(url)
    request_queue, reply_queue = f"bench.request.{new_uuid()}", f"bench.reply.{new_uuid()}"

    server_pub = await server.channel(publisher_confirms=True, on_return_raises=True)
    server_sub = await server.channel(publisher_confirms=False)
    await server_sub.set_qos(prefetch_count=256)
    requests = await server_sub.declare_queue(request_queue, auto_delete=True)

    async def serve(msg: AbstractIncomingMessage) -> None:
        await msg.ack()
        assert msg.reply_to is not None
        await server_pub.default_exchange.publish(
            aio_pika.Message(reply_body, correlation_id=msg.message_id, type="BenchEchoReply"),
            routing_key=msg.reply_to,
            mandatory=True,
        )

    await requests.consume(serve)

    client_pub = await client.channel(publisher_confirms=True, on_return_raises=True)
    client_sub = await client.channel(publisher_confirms=False)
    replies = await client_sub.declare_queue(reply_queue, auto_delete=True)
    pending: dict[str, asyncio.Future[bytes]] = {}

    async def on_reply(msg: AbstractIncomingMessage) -> None:
        future = pending.pop(msg.correlation_id or "", None)
        if future is not None and not future.done():
            future.set_result(msg.body)

    await replies.consume(on_reply, no_ack=True)
    loop = asyncio.get_running_loop()

    async def one() -> None:
        msg_id = new_uuid()
        future: asyncio.Future[bytes] = loop.create_future()
        pending[msg_id] = future
        await client_pub.default_exchange.publish(
            aio_pika.Message(
                request_body, message_id=msg_id, reply_to=reply_queue, type="BenchEchoMsg"
            ),
            routing_key=request_queue,
            mandatory=True,
        )
        await future

    try:
        yield one
    finally:
        await client.close()
        await server.close()


async def bench_amqp(payload: str, seconds: float, rounds: int) -> dict[str, dict[str, float]]:
    samples: dict[int, dict[str, list[float]]] = {lv: {"bus": [], "bare": []} for lv in LEVELS}
    async with (
        fresh_vhost("zstack-bench") as url,
        bare_pair(url, payload) as bare,
        bus_pair(url, payload) as bus,
    ):
        for one in (bare, bus):
            await rate(one, 16, 0.5)  # warm-up: connections, caches
        for round_ in range(rounds):
            for level in LEVELS:
                # Interleaved, order flipped each round: the machine's drift (other load,
                # broker state) then hits both sides alike.
                pairs = [("bare", bare), ("bus", bus)]
                for name, one in pairs if round_ % 2 == 0 else pairs[::-1]:
                    samples[level][name].append(await rate(one, level, seconds))
    result: dict[str, dict[str, float]] = {}
    for level, by_name in samples.items():
        ours, theirs = statistics.median(by_name["bus"]), statistics.median(by_name["bare"])
        result[str(level)] = {
            "bus": round(ours),
            "bare": round(theirs),
            "ratio": round(ours / theirs, 3),
        }
    return result


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=2.0, help="per measurement")
    parser.add_argument("--payload", type=int, default=256, help="bytes of payload text")
    parser.add_argument("--rounds", type=int, default=4, help="interleaved repetitions")
    args = parser.parse_args()
    payload = "x" * args.payload

    local = await bench_local(payload, args.seconds)
    local_bare = await bench_local_bare(payload, args.seconds)
    amqp = await bench_amqp(payload, args.seconds, args.rounds)
    print(
        json.dumps(
            {
                "bench": "bus",
                "request_bytes": len(encode(BenchEchoMsg(payload=payload))),
                "reply_bytes": len(encode(BenchEchoReply(payload=payload))),
                "seconds_per_sample": args.seconds,
                "rounds": args.rounds,
                "local_inproc_rt_per_s": local,
                "local_bare_asyncio_rt_per_s": local_bare,
                "local_ratio": {k: round(local[k] / local_bare[k], 3) for k in local},
                "amqp_rt_per_s": amqp,
                "min_ratio": min(v["ratio"] for v in amqp.values()),
                "goal_ratio": GOAL,
            }
        )
    )


if __name__ == "__main__":
    asyncio.run(main())
