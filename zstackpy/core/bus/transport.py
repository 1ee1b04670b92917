"""The contract every bus transport keeps (in-process and AMQP).

A transport moves envelopes between nodes; it never decodes bodies (the bus does). Queue
names follow ZStack: ``zstack.message.<service>.<node-uuid>``, the shared
``zstack.message.api.portal``, a reply queue per node and an event queue per node.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

from zstackpy.core.bus.message import Message

API_PORTAL = "api.portal"


def service_queue(service: str, node_uuid: str) -> str:
    if service == API_PORTAL:
        return f"zstack.message.{API_PORTAL}"
    return f"zstack.message.{service}.{node_uuid}"


def reply_queue(node_uuid: str) -> str:
    return f"zstack.reply.{node_uuid}"


def event_queue(node_uuid: str) -> str:
    return f"zstack.event.{node_uuid}"


class Kind(StrEnum):
    MESSAGE = "msg"
    REPLY = "reply"
    EVENT = "event"


@dataclass(slots=True)
class Envelope:
    """What a transport carries. ``body`` is bytes off the wire, or the Message itself when
    it never left the process (no serialisation on the in-process path)."""

    kind: Kind
    type_name: str
    message_id: str
    source_node: str
    body: bytes | Message
    service: str = ""
    correlation_id: str | None = None  # on replies: the id of the message answered
    reply_to: str | None = None  # the caller's node uuid, when it waits for a reply
    headers: dict[str, str] = field(default_factory=dict)


class Undeliverable(Exception):  # noqa: N818 -- public name, ZStack's term
    """No queue or no consumer for the destination (AMQP's mandatory return)."""


class Sink(Protocol):
    """The bus side of a transport: called for each envelope that arrives at this node."""

    async def on_message(self, env: Envelope) -> None:
        """Take a request. Raises DecodeError when the body is unusable: the transport
        then dead-letters it (the bus has already replied with an error)."""

    def on_reply(self, env: Envelope) -> None: ...

    async def on_event(self, env: Envelope) -> None: ...


class Transport(Protocol):
    async def start(self, node_uuid: str, sink: Sink) -> None:
        """Connect and open this node's reply and event queues."""

    async def stop(self) -> None: ...

    async def open_service(self, service: str) -> None:
        """Declare and consume this node's queue for ``service`` (or the shared portal)."""

    async def bind_event(self, type_name: str) -> None:
        """Deliver events of this type to this node."""

    async def send(self, dest_node: str | None, env: Envelope) -> None:
        """To ``service`` on ``dest_node``; ``None`` means the shared portal queue.
        Raises Undeliverable when nothing can take it."""

    async def reply(self, dest_node: str, env: Envelope) -> None: ...

    async def publish(self, env: Envelope) -> None: ...
