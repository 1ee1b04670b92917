"""Acknowledgements of one consuming channel, sent together.

Every request and event a node consumes is acknowledged, each with a frame of its own:
in a burst of VM creations on two nodes that was about as many frames as all the
publishes (9.5 acks a VM), each a socket write for the node and a frame for the broker.
Here an ack waits up to ``ACK_DELAY_S`` (deliveries of a burst arrive a few per event-loop
turn, so waiting for the turn's end alone saved little); then one ``multiple`` ack settles
the longest run of deliveries that are all done (a ``multiple`` ack of tag T settles every
delivery up to T), and only deliveries done beyond one still being handled are acked one by
one (rare: an event whose handler takes long). A delivery is never covered before it is
done, so a reject (dead-lettering) can never follow an ack of the same delivery.

Delivery tags count per channel: after a reconnect the new channel starts afresh, and what
the old one had not acknowledged the broker delivers again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from aio_pika.abc import AbstractIncomingMessage

log = logging.getLogger(__name__)

# How long an ack may wait for others. Short beside any handler, and far inside the
# prefetch window (256 deliveries in 5 ms would be 50,000 a second).
ACK_DELAY_S = 0.005
# Flushes a stopping transport waits for (acks of deliveries still arriving meanwhile).
_STOP_ROUNDS = 3


class AckBatcher:
    """One per consuming channel; every delivery with manual ack goes through it."""

    def __init__(self) -> None:
        self._channel: Any = None  # the aiormq channel the tags below belong to
        self._open: set[int] = set()  # delivered, not settled yet
        self._done: list[int] = []  # settled by an ack not sent yet
        self._flush_task: asyncio.Task[None] | None = None
        self._now = asyncio.Event()  # set when stopping: flush without waiting
        self.frames = 0  # ack frames sent (tests, metrics)

    def delivered(self, msg: AbstractIncomingMessage) -> None:
        """Note a delivery before it is handled: nothing after it is acked past it."""
        self._follow(msg)
        if msg.delivery_tag is not None:
            self._open.add(msg.delivery_tag)

    def ack(self, msg: AbstractIncomingMessage) -> None:
        """The delivery is done: acknowledge it with the others of this turn."""
        tag = msg.delivery_tag
        if tag is None or msg.channel is not self._channel:
            return  # its channel is gone: the broker delivers it again anyway
        self._open.discard(tag)
        self._done.append(tag)
        if self._flush_task is None:
            self._flush_task = asyncio.get_running_loop().create_task(self._flush())

    async def reject(self, msg: AbstractIncomingMessage) -> None:
        """Dead-letter the delivery (never requeued), at once."""
        if msg.delivery_tag is not None and msg.channel is self._channel:
            self._open.discard(msg.delivery_tag)
        await msg.reject(requeue=False)

    async def flush(self) -> None:
        """Send the acks still waiting, now (the transport is stopping: an ack lost with
        the connection would have the broker deliver a handled message again, and the
        shared portal queue would hand it to another node)."""
        self._now.set()
        for _ in range(_STOP_ROUNDS):
            task = self._flush_task
            if task is None:
                break
            await asyncio.shield(task)

    def _follow(self, msg: AbstractIncomingMessage) -> None:
        if msg.channel is not self._channel:
            self._channel = msg.channel
            self._open.clear()
            self._done.clear()

    async def _flush(self) -> None:
        try:
            # The burst's other deliveries settle meanwhile (unless the transport stops).
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._now.wait(), ACK_DELAY_S)
            channel, done = self._channel, sorted(self._done)
            self._done.clear()
            if not done:
                return
            floor = min(self._open, default=None)
            covered = [tag for tag in done if floor is None or tag < floor]
            if covered:
                await self._send(channel, covered[-1], multiple=len(covered) > 1)
            for tag in done[len(covered) :]:
                await self._send(channel, tag, multiple=False)
        finally:
            self._flush_task = None
            if self._done:  # acks that came while this flush was sending
                self._flush_task = asyncio.get_running_loop().create_task(self._flush())

    async def _send(self, channel: Any, tag: int, *, multiple: bool) -> None:
        self.frames += 1
        try:
            await channel.basic_ack(delivery_tag=tag, multiple=multiple)
        except Exception as exc:
            # The channel went away: the broker delivers again what was never acked.
            log.warning("could not acknowledge delivery %s: %r", tag, exc)
