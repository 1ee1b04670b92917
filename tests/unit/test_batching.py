"""QueueBatcher: concurrent requests of one queue served together, in order, each with its
own outcome; other jobs of the queue still ordered against the batch; cancellation."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from zstackpy.core.batching import QueueBatcher
from zstackpy.core.errors import SysErr, ZError
from zstackpy.core.workqueue import QueueKey, WorkQueues


def sig() -> QueueKey:
    return QueueKey("pool", uuid.uuid4().hex)


class Pool:
    """A counter of units, taken in batches: the shape of a host's capacity."""

    def __init__(self, units: int) -> None:
        self.units = units
        self.batches: list[list[int]] = []
        self.opened = asyncio.Event()
        self.opened.set()

    async def take(self, asks: list[int]) -> list[int | ZError]:
        self.batches.append(list(asks))
        await self.opened.wait()
        outcomes: list[int | ZError] = []
        for ask in asks:
            if ask > self.units:
                outcomes.append(ZError(SysErr.INVALID_ARGUMENT, "no room", ask=ask))
                continue
            self.units -= ask
            outcomes.append(self.units)
        return outcomes


async def test_a_burst_is_served_in_few_batches_in_arrival_order() -> None:
    queues, pool, key = WorkQueues(), Pool(100), sig()
    batcher: QueueBatcher[int, int] = QueueBatcher(queues, pool.take)
    pool.opened.clear()  # the first batch parks: the rest of the burst piles up behind it
    first = asyncio.create_task(batcher.submit(key, 1))
    await asyncio.sleep(0)
    rest = [asyncio.create_task(batcher.submit(key, 1)) for _ in range(49)]
    await asyncio.sleep(0)
    pool.opened.set()
    results = await asyncio.gather(first, *rest)
    assert results == list(range(99, 49, -1))  # each saw what the earlier ones left
    assert [len(b) for b in pool.batches] == [1, 49]
    assert len(queues) == 0


async def test_each_request_gets_its_own_error_and_the_rest_go_on() -> None:
    queues, pool, key = WorkQueues(), Pool(3), sig()
    batcher: QueueBatcher[int, int] = QueueBatcher(queues, pool.take)
    outcomes = await asyncio.gather(
        *(batcher.submit(key, ask) for ask in (2, 5, 1, 1)), return_exceptions=True
    )
    assert outcomes[0] == 1
    assert outcomes[2] == 0
    assert isinstance(outcomes[1], ZError)
    assert outcomes[1].details == {"ask": 5}
    assert isinstance(outcomes[3], ZError)
    assert pool.units == 0


async def test_a_failed_batch_fails_each_caller_with_its_own_copy() -> None:
    queues, key = WorkQueues(), sig()

    async def broken(asks: list[int]) -> list[int | ZError]:
        raise ZError(SysErr.INTERNAL, "storage gone", asks=len(asks))

    batcher: QueueBatcher[int, int] = QueueBatcher(queues, broken)
    outcomes = await asyncio.gather(
        *(batcher.submit(key, 1) for _ in range(3)), return_exceptions=True
    )
    assert all(isinstance(o, ZError) and o.code == SysErr.INTERNAL for o in outcomes)
    assert len({id(o) for o in outcomes}) == 3


async def test_other_jobs_of_the_queue_stay_ordered_against_the_batch() -> None:
    queues, pool, key = WorkQueues(), Pool(10), sig()
    batcher: QueueBatcher[int, int] = QueueBatcher(queues, pool.take)
    seen: list[str] = []

    async def other() -> None:
        seen.append(f"other saw {pool.units}")

    pool.opened.clear()
    first = asyncio.create_task(batcher.submit(key, 4))
    await asyncio.sleep(0)
    between = asyncio.create_task(queues.run(key, other))
    await asyncio.sleep(0)
    pool.opened.set()
    await asyncio.gather(first, between)
    assert seen == ["other saw 6"]  # queued after the reservation: it ran after it


async def test_a_caller_cancelled_while_waiting_is_never_served() -> None:
    queues, pool, key = WorkQueues(), Pool(10), sig()
    batcher: QueueBatcher[int, int] = QueueBatcher(queues, pool.take)
    pool.opened.clear()
    first = asyncio.create_task(batcher.submit(key, 1))
    await asyncio.sleep(0)
    gone = asyncio.create_task(batcher.submit(key, 5))
    stays = asyncio.create_task(batcher.submit(key, 2))
    await asyncio.sleep(0)
    gone.cancel()
    with pytest.raises(asyncio.CancelledError):
        await gone
    pool.opened.set()
    assert await first == 9
    assert await stays == 7
    assert pool.units == 7


async def test_max_batch_splits_a_burst() -> None:
    queues, pool, key = WorkQueues(), Pool(100), sig()
    batcher: QueueBatcher[int, int] = QueueBatcher(queues, pool.take, max_batch=4)
    pool.opened.clear()
    tasks = [asyncio.create_task(batcher.submit(key, 1)) for _ in range(10)]
    await asyncio.sleep(0)
    pool.opened.set()
    await asyncio.gather(*tasks)
    assert all(len(b) <= 4 for b in pool.batches)
    assert sum(len(b) for b in pool.batches) == 10
    assert pool.units == 90
