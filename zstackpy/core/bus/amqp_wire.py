"""How an Envelope travels as an AMQP message, and the names and arguments of the topology.

Mapping (both directions):

=================  ====================================================================
AMQP               Envelope
=================  ====================================================================
``type``           ``type_name`` (the message class name)
``message_id``     ``message_id``
``correlation_id`` ``correlation_id`` (on replies: the id of the message answered)
``reply_to``       ``reply_to``: the caller's *node uuid* (its reply queue is derived)
``app_id``         ``source_node``
headers            ``zstack-kind``, ``zstack-service``; the envelope's own headers as-is
body               JSON from ``message.encode`` (bytes bodies are sent untouched)
=================  ====================================================================

``kind`` and ``service`` also follow from the queue a message arrives on; the headers keep
the wire self-describing for someone reading a dead-lettered message.
"""

from __future__ import annotations

from typing import Any

from aio_pika.abc import AbstractIncomingMessage
from pamqp.commands import Basic

from zstackpy.core.bus.message import Message, encode
from zstackpy.core.bus.transport import Envelope, Kind

EVENT_EXCHANGE = "zstack.event"
DEAD_LETTER_EXCHANGE = "zstack.dead-letter"
DEAD_LETTER_QUEUE = "zstack.dead-letter"
# Bounded so that a flood of bad messages cannot fill the broker; the oldest go first.
DEAD_LETTER_MAX_LENGTH = 10_000
# A dead node's queues outlive it briefly (publishes in flight still get confirmed and
# routed), then the broker drops them. Every node must declare the same arguments, or the
# broker refuses the declaration (PRECONDITION_FAILED), hence one constant.
QUEUE_EXPIRES_MS = 5 * 60 * 1000

KIND_HEADER = "zstack-kind"
SERVICE_HEADER = "zstack-service"
_OWN_HEADERS = frozenset({KIND_HEADER, SERVICE_HEADER})

_JSON = "application/json"
_TRANSIENT = 1  # delivery_mode: queues are not durable, persisting bodies buys nothing


def node_queue_arguments() -> dict[str, Any]:
    return {
        "x-expires": QUEUE_EXPIRES_MS,
        "x-dead-letter-exchange": DEAD_LETTER_EXCHANGE,
    }


def body_bytes(env: Envelope) -> bytes:
    return encode(env.body) if isinstance(env.body, Message) else env.body


def properties_of(env: Envelope) -> Basic.Properties:
    headers: dict[str, Any] = dict(env.headers)
    headers[KIND_HEADER] = env.kind.value
    if env.service:
        headers[SERVICE_HEADER] = env.service
    return Basic.Properties(
        content_type=_JSON,
        delivery_mode=_TRANSIENT,
        message_type=env.type_name,
        message_id=env.message_id,
        correlation_id=env.correlation_id,
        reply_to=env.reply_to,
        app_id=env.source_node,
        headers=headers,
    )


def envelope_of(kind: Kind, msg: AbstractIncomingMessage, *, service: str = "") -> Envelope:
    """Rebuild an envelope from what arrived; tolerant of foreign publishers, since a
    missing field must end as an error reply or a dead letter, not a crashed consumer.
    ``service`` is the one the arrival queue serves; it wins over the header."""
    raw_headers = msg.headers or {}
    headers = {
        str(k): v if isinstance(v, str) else str(v)
        for k, v in raw_headers.items()
        if k not in _OWN_HEADERS
    }
    if not service:
        header_service = raw_headers.get(SERVICE_HEADER)
        service = header_service if isinstance(header_service, str) else ""
    return Envelope(
        kind=kind,
        type_name=msg.type or "",
        message_id=msg.message_id or "",
        source_node=msg.app_id or "",
        body=msg.body,
        service=service,
        correlation_id=msg.correlation_id,
        reply_to=msg.reply_to or None,
        headers=headers,
    )
