"""The AMQP transport: CloudBus over RabbitMQ with aio-pika.

Topology (see ``amqp_wire`` for names and the envelope mapping):

- ``zstack.message.<service>.<node>``: one queue per service per node, on the default
  exchange; ``zstack.message.api.portal`` is shared and consumed by every node, so the broker
  load-balances API messages.
- ``zstack.reply.<node>``: this node's replies.
- ``zstack.event`` (topic) -> ``zstack.event.<node>``, bound per event type name.
- Every per-node queue dead-letters to ``zstack.dead-letter`` (fanout) -> a bounded queue of
  the same name, and expires a few minutes after its node stopped consuming it.

One channel publishes, with confirms and ``mandatory`` (an unroutable message raises
Undeliverable); another consumes, with manual acks once the bus has taken a message. The
connection is robust: aio-pika re-declares and re-consumes after a reconnect, and this
transport then checks with the broker that its consumers are really there.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from typing import cast

import aio_pika
import aiormq
from aio_pika.abc import (
    AbstractIncomingMessage,
    AbstractRobustChannel,
    AbstractRobustConnection,
    AbstractRobustQueue,
    ExchangeType,
)

from zstackpy.core.bus.acks import AckBatcher
from zstackpy.core.bus.amqp_wire import (
    DEAD_LETTER_EXCHANGE,
    DEAD_LETTER_MAX_LENGTH,
    DEAD_LETTER_QUEUE,
    EVENT_EXCHANGE,
    body_bytes,
    envelope_of,
    node_queue_arguments,
    properties_of,
)
from zstackpy.core.bus.message import DecodeError
from zstackpy.core.bus.transport import (
    API_PORTAL,
    Envelope,
    Kind,
    Sink,
    Undeliverable,
    event_queue,
    reply_queue,
    service_queue,
)

log = logging.getLogger(__name__)

Callback = Callable[[AbstractIncomingMessage], Awaitable[None]]


@dataclass(slots=True)
class _Consumer:
    queue: AbstractRobustQueue
    callback: Callback
    no_ack: bool
    tag: str
    shared: bool  # other nodes consume it too: the broker's consumer count proves nothing


class AmqpTransport:
    """Transport over RabbitMQ. ``url`` is an ``amqp://`` URL (its path is the vhost);
    ``prefetch`` bounds unacknowledged deliveries on the consuming channel."""

    def __init__(self, url: str, *, prefetch: int = 256, reconnect_interval: float = 1.0) -> None:
        self.url = url
        self.prefetch = prefetch
        self.reconnect_interval = reconnect_interval
        self.reconnects = 0
        # Bumped at each reconnect; the bus notes it on every request it sends, and
        # ``on_reconnect`` (the bus's) fails the calls sent on an earlier connection.
        self.generation = 0
        self.on_reconnect: Callable[[], object] | None = None
        self._node_uuid = ""
        self._sink: Sink | None = None
        self._conn: AbstractRobustConnection | None = None
        self._pub: AbstractRobustChannel | None = None
        self._sub: AbstractRobustChannel | None = None
        self._consumers: dict[str, _Consumer] = {}
        # The consuming channel's acks, a frame per loop turn instead of one per delivery.
        self.acks = AckBatcher()

    @property
    def is_connected(self) -> bool:
        """False while stopped or while the robust connection is reconnecting (readiness)."""
        conn = self._conn
        return conn is not None and not conn.is_closed and conn.connected.is_set()

    # ----- lifecycle -------------------------------------------------------------------

    async def start(self, node_uuid: str, sink: Sink) -> None:
        self._node_uuid = node_uuid
        self._sink = sink
        conn = await aio_pika.connect_robust(
            self.url,
            reconnect_interval=self.reconnect_interval,
            client_properties={"connection_name": f"zstack node {node_uuid}"},
        )
        self._conn = conn
        try:
            self._pub = await conn.channel(publisher_confirms=True, on_return_raises=True)
            self._sub = await conn.channel(publisher_confirms=False)
            await self._sub.set_qos(prefetch_count=self.prefetch)
            await self._declare_shared()
            # A reply needs no ack: on_reply only resolves a future, and a reply lost with
            # the connection ends as the caller's timeout either way.
            await self._consume(reply_queue(node_uuid), self._on_reply, no_ack=True)
            await self._consume(event_queue(node_uuid), self._on_event, no_ack=False)
        except BaseException:
            await self.stop()
            raise
        conn.reconnect_callbacks.add(self._after_reconnect)

    async def stop(self) -> None:
        if self._conn is not None:
            await self.acks.flush()
        conn, self._conn = self._conn, None
        self._pub = self._sub = None
        self._consumers.clear()
        if conn is not None:
            conn.reconnect_callbacks.discard(self._after_reconnect)
            # Unacked deliveries go back to their queues when the connection closes.
            await conn.close()

    async def _declare_shared(self) -> None:
        sub = self._channel(self._sub)
        dlx = await sub.declare_exchange(DEAD_LETTER_EXCHANGE, ExchangeType.FANOUT, durable=True)
        dlq = await sub.declare_queue(
            DEAD_LETTER_QUEUE, durable=True, arguments={"x-max-length": DEAD_LETTER_MAX_LENGTH}
        )
        await dlq.bind(dlx, routing_key="")
        await sub.declare_exchange(EVENT_EXCHANGE, ExchangeType.TOPIC, durable=True)

    async def _consume(self, name: str, callback: Callback, *, no_ack: bool) -> _Consumer:
        queue = await self._channel(self._sub).declare_queue(name, arguments=node_queue_arguments())
        tag = await queue.consume(callback, no_ack=no_ack)
        shared = name == service_queue(API_PORTAL, "")
        consumer = _Consumer(queue, callback, no_ack, tag, shared)
        self._consumers[name] = consumer
        return consumer

    # ----- Transport -------------------------------------------------------------------

    async def open_service(self, service: str) -> None:
        name = service_queue(service, self._node_uuid)
        if name not in self._consumers:
            await self._consume(name, partial(self._on_request, service), no_ack=False)

    async def bind_event(self, type_name: str) -> None:
        consumer = self._consumers.get(event_queue(self._node_uuid))
        if consumer is None:
            raise RuntimeError("the AMQP transport is not started")
        # A robust queue records the binding and restores it after a reconnect.
        await consumer.queue.bind(EVENT_EXCHANGE, routing_key=type_name)

    async def send(self, dest_node: str | None, env: Envelope) -> None:
        await self._publish("", service_queue(env.service, dest_node or ""), env, mandatory=True)

    async def reply(self, dest_node: str, env: Envelope) -> None:
        await self._publish("", reply_queue(dest_node), env, mandatory=True)

    async def publish(self, env: Envelope) -> None:
        # Not mandatory: an event nobody subscribed to is not an error.
        await self._publish(EVENT_EXCHANGE, env.type_name, env, mandatory=False)

    async def _publish(
        self, exchange: str, routing_key: str, env: Envelope, *, mandatory: bool
    ) -> None:
        pub = self._pub
        if pub is None:
            raise Undeliverable("the AMQP transport is stopped")
        if pub.is_closed:
            # Reconnecting: wait here rather than fail; the bus bounds the wait by the
            # call's timeout.
            await pub.ready()
        try:
            channel = await pub.get_underlay_channel()
            await channel.basic_publish(
                body_bytes(env),
                exchange=exchange,
                routing_key=routing_key,
                properties=properties_of(env),
                mandatory=mandatory,
            )
        except aiormq.exceptions.PublishError as exc:
            raise Undeliverable(f"no queue {routing_key}") from exc
        except aiormq.exceptions.DeliveryError as exc:
            raise Undeliverable(f"the broker refused the message for {routing_key}") from exc
        except (aiormq.exceptions.AMQPError, aiormq.exceptions.ChannelInvalidStateError) as exc:
            # The confirm was lost with the connection: the message may or may not have
            # arrived. Report it rather than republish, which could run a handler twice.
            raise Undeliverable(f"connection lost publishing to {routing_key}: {exc!r}") from exc

    # ----- consuming -------------------------------------------------------------------

    def _require_sink(self) -> Sink:
        if self._sink is None:
            raise RuntimeError("the AMQP transport is not started")
        return self._sink

    async def _on_request(self, service: str, msg: AbstractIncomingMessage) -> None:
        # Nothing may escape: an exception here would only be logged by aiormq, but a
        # message left unacked would hold a prefetch slot until the connection dies.
        self.acks.delivered(msg)
        try:
            await self._require_sink().on_message(envelope_of(Kind.MESSAGE, msg, service=service))
        except DecodeError as exc:
            log.warning(
                "dead-lettering undecodable message %s (type %r) on %s: %s",
                msg.message_id,
                msg.type,
                msg.routing_key,
                exc.reason,
            )
            await self._dead_letter(msg)
            return
        except Exception:
            log.exception(
                "dead-lettering message %s on %s: the bus failed to take it",
                msg.message_id,
                msg.routing_key,
            )
            await self._dead_letter(msg)
            return
        self.acks.ack(msg)

    async def _on_reply(self, msg: AbstractIncomingMessage) -> None:
        try:
            self._require_sink().on_reply(envelope_of(Kind.REPLY, msg))
        except Exception:
            log.exception("dropping reply %s: the bus failed to take it", msg.message_id)

    async def _on_event(self, msg: AbstractIncomingMessage) -> None:
        self.acks.delivered(msg)
        try:
            await self._require_sink().on_event(envelope_of(Kind.EVENT, msg))
        except Exception:
            log.exception(
                "dropping event %s (%r): the bus failed to take it", msg.message_id, msg.type
            )
        self.acks.ack(msg)

    async def _dead_letter(self, msg: AbstractIncomingMessage) -> None:
        try:
            # No requeue: the queue's dead-letter exchange takes it.
            await self.acks.reject(msg)
        except Exception as exc:
            # The channel went away: the broker redelivers what was never settled.
            log.warning("could not dead-letter message %s: %r", msg.message_id, exc)

    # ----- reconnect checks ------------------------------------------------------------

    async def _after_reconnect(self, _conn: AbstractRobustConnection | None, /) -> None:
        self.reconnects += 1
        self.generation += 1
        if self.on_reconnect is not None:
            failed = self.on_reconnect()
            if failed:
                log.warning("%s calls in flight across the reconnect failed", failed)
        try:
            missing = await self.ensure_consumers()
        except Exception:
            log.exception("checking consumers after reconnecting to RabbitMQ failed")
            return
        if not missing:
            log.info("reconnected to RabbitMQ; all %d consumers present", len(self._consumers))

    async def ensure_consumers(self) -> list[str]:
        """Check with the broker that every queue of this node has its consumer; consume
        again where one is missing, loudly. Returns the queues that were missing one."""
        missing = await self.missing_consumers()
        if missing:
            log.error("node %s lost its consumers on %s; consuming again", self._node_uuid, missing)
            for name in missing:
                await self._reconsume(name)
        return missing

    async def missing_consumers(self) -> list[str]:
        """Queues of this node that the broker shows without a consumer (a passive declare
        per queue on a throwaway channel); for the shared portal queue, where others
        consume too, whether our own consumer tag is registered on the channel."""
        conn = self._conn
        if conn is None or conn.transport is None:
            raise RuntimeError("the AMQP transport is not connected")
        underlay = await self._channel(self._sub).get_underlay_channel()
        # aiormq's abstract channel does not declare the consumer registry its channel has.
        own_tags = cast(aiormq.Channel, underlay).consumers
        missing: list[str] = []
        probe: aiormq.abc.AbstractChannel | None = None
        try:
            for name, consumer in self._consumers.items():
                if probe is None or probe.is_closed:
                    probe = await conn.transport.connection.channel(publisher_confirms=False)
                try:
                    declared = await probe.queue_declare(name, passive=True)
                except aiormq.exceptions.ChannelNotFoundEntity:
                    missing.append(name)
                    continue
                if (declared.consumer_count or 0) < 1 or (
                    consumer.shared and consumer.tag not in own_tags
                ):
                    missing.append(name)
        finally:
            if probe is not None and not probe.is_closed:
                await probe.close()
        return missing

    async def _reconsume(self, name: str) -> None:
        consumer = self._consumers[name]
        with contextlib.suppress(Exception):
            await consumer.queue.cancel(consumer.tag)
        await consumer.queue.declare()
        consumer.tag = await consumer.queue.consume(consumer.callback, no_ack=consumer.no_ack)

    @staticmethod
    def _channel(channel: AbstractRobustChannel | None) -> AbstractRobustChannel:
        if channel is None:
            raise RuntimeError("the AMQP transport is not started")
        return channel
