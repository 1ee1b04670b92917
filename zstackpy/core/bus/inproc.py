"""The in-process transport: the embedded default.

An ``InProcBroker`` plays RabbitMQ's part for every node in one process: named queues, a
shared portal queue served round-robin, fan-out of events, and a dead-letter list. One node
gets a broker of its own; tests hand several nodes the same broker to form a cluster.
Envelopes keep their Message objects: nothing is serialised.
"""

from __future__ import annotations

import itertools
import logging
from collections import defaultdict
from dataclasses import dataclass, field

from zstackpy.core.bus.message import DecodeError
from zstackpy.core.bus.transport import (
    Envelope,
    Sink,
    Undeliverable,
    event_queue,
    reply_queue,
    service_queue,
)

log = logging.getLogger(__name__)


@dataclass
class InProcBroker:
    queues: dict[str, list[Sink]] = field(default_factory=lambda: defaultdict(list))
    event_bindings: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    dead_letters: list[Envelope] = field(default_factory=list)
    _round_robin: dict[str, itertools.count[int]] = field(default_factory=dict)

    def consume(self, queue: str, sink: Sink) -> None:
        if sink not in self.queues[queue]:
            self.queues[queue].append(sink)

    def cancel(self, sink: Sink) -> None:
        for name in list(self.queues):
            consumers = self.queues[name]
            if sink in consumers:
                consumers.remove(sink)
            if not consumers:
                del self.queues[name]

    def consumer_of(self, queue: str) -> Sink:
        consumers = self.queues.get(queue)
        if not consumers:
            raise Undeliverable(f"no queue {queue}")
        counter = self._round_robin.setdefault(queue, itertools.count())
        return consumers[next(counter) % len(consumers)]

    async def deliver(self, queue: str, env: Envelope) -> None:
        sink = self.consumer_of(queue)
        try:
            await sink.on_message(env)
        except DecodeError:
            self.dead_letters.append(env)

    def queue_names(self) -> list[str]:
        return sorted(self.queues)


class InProcTransport:
    def __init__(self, broker: InProcBroker | None = None) -> None:
        self.broker = broker if broker is not None else InProcBroker()
        self._node_uuid = ""
        self._sink: Sink | None = None

    async def start(self, node_uuid: str, sink: Sink) -> None:
        self._node_uuid = node_uuid
        self._sink = sink
        self.broker.consume(reply_queue(node_uuid), sink)
        self.broker.consume(event_queue(node_uuid), sink)

    async def stop(self) -> None:
        if self._sink is not None:
            self.broker.cancel(self._sink)
            for bound in self.broker.event_bindings.values():
                bound.discard(self._node_uuid)
        self._sink = None

    def _require_sink(self) -> Sink:
        if self._sink is None:
            raise RuntimeError("the in-process transport is not started")
        return self._sink

    async def open_service(self, service: str) -> None:
        self.broker.consume(service_queue(service, self._node_uuid), self._require_sink())

    async def bind_event(self, type_name: str) -> None:
        self._require_sink()
        self.broker.event_bindings[type_name].add(self._node_uuid)

    async def send(self, dest_node: str | None, env: Envelope) -> None:
        await self.broker.deliver(service_queue(env.service, dest_node or ""), env)

    async def reply(self, dest_node: str, env: Envelope) -> None:
        self.broker.consumer_of(reply_queue(dest_node)).on_reply(env)

    async def publish(self, env: Envelope) -> None:
        for node in list(self.broker.event_bindings.get(env.type_name, ())):
            consumers = self.broker.queues.get(event_queue(node))
            if consumers:
                await consumers[0].on_event(env)
