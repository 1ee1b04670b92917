"""The work queues of the network domain. Every change of an L2 network runs in its
``l2:<uuid>`` queue, every change of an L3 network and of its addresses in its
``l3:<uuid>`` queue, on the ring owner of that uuid. A job in an L2 queue may wait for an
L3 queue (an L2's delete deletes its L3s), never the other way round."""

from __future__ import annotations

from zstackpy.core.workqueue import QueueKey


def l2_queue(uuid: str) -> QueueKey:
    return QueueKey("l2", uuid)


def l3_queue(uuid: str) -> QueueKey:
    return QueueKey("l3", uuid)
