"""Work queues: FIFO order, levels, failure and cancellation isolation, limits, stats."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from zstackpy.core.errors import KernelErr, ZError
from zstackpy.core.workqueue import QueueKey, WorkQueues


def sig(kind: str = "vm") -> QueueKey:
    return QueueKey(kind, uuid.uuid4().hex)


async def spin(rounds: int = 20) -> None:
    """Let every ready task run a few steps; no timers involved."""
    for _ in range(rounds):
        await asyncio.sleep(0)


class Gate:
    """A job body that parks until the test opens it, recording that it started."""

    def __init__(self) -> None:
        self.started = asyncio.Event()
        self.opened = asyncio.Event()

    async def __call__(self, value: str = "gate") -> str:
        self.started.set()
        await self.opened.wait()
        return value


def test_queue_key_str() -> None:
    assert str(QueueKey("vm", "abc")) == "vm:abc"


async def test_fifo_order_on_one_signature() -> None:
    queues, key, gate = WorkQueues(), sig(), Gate()
    order: list[int] = []

    async def job(i: int) -> int:
        order.append(i)
        await asyncio.sleep(0)  # yield, so a broken queue would interleave jobs
        return i

    head = asyncio.create_task(queues.run(key, gate))
    await gate.started.wait()
    tasks = []
    for i in range(50):
        tasks.append(asyncio.create_task(queues.run(key, job, i)))
        await asyncio.sleep(0)  # enqueue strictly in creation order
    assert queues.depth(key) == 50
    assert queues.running(key) == 1
    assert order == []
    gate.opened.set()
    assert await head == "gate"
    assert await asyncio.gather(*tasks) == list(range(50))
    assert order == list(range(50))
    assert len(queues) == 0


async def test_level_three_runs_exactly_three_at_a_time() -> None:
    queues, key = WorkQueues(), sig()
    active = peak = 0
    release = asyncio.Event()

    async def job() -> None:
        nonlocal active, peak
        active += 1
        peak = max(peak, active)
        await release.wait()
        await spin(3)
        active -= 1

    tasks = [asyncio.create_task(queues.run(key, job, level=3)) for _ in range(20)]
    await spin()
    assert (active, queues.running(key), queues.depth(key)) == (3, 3, 17)
    release.set()
    await asyncio.gather(*tasks)
    assert peak == 3
    assert len(queues) == 0


async def test_level_is_fixed_by_the_run_that_creates_the_queue() -> None:
    queues, key, gate = WorkQueues(), sig(), Gate()
    first = asyncio.create_task(queues.run(key, gate, level=1))
    await gate.started.wait()
    second = asyncio.create_task(queues.run(key, Gate(), level=5))
    await spin()
    assert queues.running(key) == 1
    assert queues.depth(key) == 1
    second.cancel()
    gate.opened.set()
    await first
    with pytest.raises(asyncio.CancelledError):
        await second


async def test_different_signatures_do_not_wait_for_each_other() -> None:
    queues, gate = WorkQueues(), Gate()
    blocked = asyncio.create_task(queues.run(sig(), gate))
    await gate.started.wait()

    async def quick() -> str:
        return "ok"

    assert await asyncio.wait_for(queues.run(sig(), quick), 1) == "ok"
    gate.opened.set()
    await blocked


async def test_exception_reaches_only_its_caller_and_queue_moves_on() -> None:
    queues, key, gate = WorkQueues(), sig(), Gate()

    async def boom() -> None:
        raise ValueError("boom")

    async def after() -> str:
        return "after"

    head = asyncio.create_task(queues.run(key, gate))
    await gate.started.wait()
    failing = asyncio.create_task(queues.run(key, boom))
    following = asyncio.create_task(queues.run(key, after))
    await spin()
    gate.opened.set()
    with pytest.raises(ValueError, match="boom"):
        await failing
    assert await asyncio.wait_for(following, 1) == "after"
    assert await head == "gate"
    assert len(queues) == 0


async def test_cancelled_waiter_leaves_and_does_not_stall() -> None:
    queues, key, gate = WorkQueues(), sig(), Gate()
    ran: list[str] = []

    async def job(name: str) -> None:
        ran.append(name)

    head = asyncio.create_task(queues.run(key, gate))
    await gate.started.wait()
    b = asyncio.create_task(queues.run(key, job, "b"))
    c = asyncio.create_task(queues.run(key, job, "c"))
    await spin()
    b.cancel()
    await spin()
    assert queues.depth(key) == 1
    gate.opened.set()
    await asyncio.wait_for(c, 1)
    with pytest.raises(asyncio.CancelledError):
        await b
    await head
    assert ran == ["c"]
    assert len(queues) == 0


async def test_waiter_cancelled_after_grant_passes_the_slot_on() -> None:
    # The slot is handed to b, then b is cancelled before it resumes: c must still run.
    queues, key = WorkQueues(), sig()
    ran: list[str] = []
    proceed = asyncio.Event()
    b: asyncio.Task[None] | None = None

    async def job(name: str) -> None:
        ran.append(name)

    async def holder() -> None:
        await proceed.wait()

    async def head_then_cancel_b() -> None:
        await queues.run(key, holder)
        # Same step as the release that granted b its slot: b has not resumed yet.
        assert b is not None
        assert queues.running(key) == 1
        b.cancel()

    head = asyncio.create_task(head_then_cancel_b())
    await spin()
    b = asyncio.create_task(queues.run(key, job, "b"))
    c = asyncio.create_task(queues.run(key, job, "c"))
    await spin()
    assert queues.depth(key) == 2
    proceed.set()
    await asyncio.wait_for(c, 1)
    with pytest.raises(asyncio.CancelledError):
        await b
    await head
    assert ran == ["c"]
    assert len(queues) == 0
    stats = queues.snapshot()["vm"]
    assert (stats.running, stats.waiting, stats.canceled) == (0, 0, 1)


async def test_newcomer_runs_when_only_a_cancelled_waiter_remains() -> None:
    # b's wait is cancelled and the slot frees before b resumes: a newcomer must take the
    # slot at once, not queue behind a waiter that will never use it.
    queues, key = WorkQueues(), sig()
    proceed = asyncio.Event()
    b: asyncio.Task[None] | None = None

    async def holder() -> None:
        await proceed.wait()
        assert b is not None
        b.cancel()  # b's future is cancelled now; b itself resumes on a later step

    async def newcomer() -> str:
        await asyncio.sleep(0)
        return "new"

    async def noop() -> None:
        return None

    async def head() -> str:
        await queues.run(key, holder)
        assert queues.running(key) == 0
        assert queues.depth(key) == 1  # b has not resumed to leave yet
        return await queues.run(key, newcomer)

    first = asyncio.create_task(head())
    await spin()
    b = asyncio.create_task(queues.run(key, noop))
    await spin()
    proceed.set()
    assert await asyncio.wait_for(first, 1) == "new"
    with pytest.raises(asyncio.CancelledError):
        await b
    assert len(queues) == 0


async def test_cancel_fails_waiting_jobs_with_queue_canceled() -> None:
    queues, key, gate = WorkQueues(), sig(), Gate()
    head = asyncio.create_task(queues.run(key, gate))
    await gate.started.wait()
    waiting = [asyncio.create_task(queues.run(key, Gate())) for _ in range(2)]
    await spin()
    assert queues.cancel(key) == 2
    for task in waiting:
        with pytest.raises(ZError) as info:
            await task
        assert info.value.code == KernelErr.QUEUE_CANCELED
        assert info.value.details["signature"] == str(key)
    assert queues.depth(key) == 0
    assert queues.running(key) == 1
    gate.opened.set()
    assert await head == "gate"
    assert len(queues) == 0
    assert queues.cancel(key) == 0


async def test_cancel_running_converts_to_queue_canceled_and_frees_slot() -> None:
    queues, key, gate = WorkQueues(), sig(), Gate()

    async def caller() -> str:
        try:
            await queues.run(key, gate)
        except ZError as exc:
            # the caller's task must not stay marked as cancelled
            current = asyncio.current_task()
            assert current is not None
            assert current.cancelling() == 0
            await asyncio.sleep(0)
            return str(exc.code)
        return "not canceled"

    head = asyncio.create_task(caller())
    await gate.started.wait()
    waiter = asyncio.create_task(queues.run(key, Gate()))
    await spin()
    assert queues.cancel(key, running=True) == 2
    assert await head == KernelErr.QUEUE_CANCELED
    with pytest.raises(ZError):
        await waiter
    assert len(queues) == 0


async def test_cancel_running_keeps_an_outside_cancellation() -> None:
    queues, key, gate = WorkQueues(), sig(), Gate()
    head = asyncio.create_task(queues.run(key, gate))
    await gate.started.wait()
    queues.cancel(key, running=True)
    head.cancel()
    with pytest.raises(asyncio.CancelledError):
        await head
    assert len(queues) == 0


async def test_max_pending_refuses_instead_of_queueing() -> None:
    queues, key, gate = WorkQueues(), sig(), Gate()
    head = asyncio.create_task(queues.run(key, gate, max_pending=1))
    await gate.started.wait()
    second = asyncio.create_task(queues.run(key, Gate(), max_pending=1))
    await spin()
    with pytest.raises(ZError) as info:
        await queues.run(key, Gate(), max_pending=1)
    assert info.value.code == KernelErr.QUEUE_FULL
    assert info.value.details == {"signature": str(key), "waiting": 1, "max_pending": 1}
    assert queues.depth(key) == 1
    assert queues.snapshot()["vm"].refused == 1
    second.cancel()
    gate.opened.set()
    await head
    with pytest.raises(asyncio.CancelledError):
        await second


async def test_max_pending_zero_runs_when_a_slot_is_free() -> None:
    queues = WorkQueues()

    async def quick() -> int:
        return 7

    assert await queues.run(sig(), quick, max_pending=0) == 7


async def test_queues_are_dropped_when_empty() -> None:
    queues = WorkQueues()

    async def quick() -> None:
        await asyncio.sleep(0)

    async def boom() -> None:
        raise RuntimeError("x")

    keys = [sig() for _ in range(10)]
    await asyncio.gather(*(queues.run(k, quick) for k in keys for _ in range(3)))
    assert len(queues) == 0
    with pytest.raises(RuntimeError):
        await queues.run(keys[0], boom)
    assert len(queues) == 0
    assert queues.depth(keys[0]) == queues.running(keys[0]) == 0


async def test_many_cancelled_waiters_are_compacted_and_order_kept() -> None:
    queues, key, gate = WorkQueues(), sig(), Gate()
    order: list[int] = []

    async def job(i: int) -> None:
        order.append(i)

    head = asyncio.create_task(queues.run(key, gate))
    await gate.started.wait()
    tasks = []
    for i in range(300):
        tasks.append(asyncio.create_task(queues.run(key, job, i)))
        await asyncio.sleep(0)
    for i, task in enumerate(tasks):
        if i % 4:
            task.cancel()
    await spin()
    assert queues.depth(key) == 75
    gate.opened.set()
    await head
    await asyncio.gather(*tasks, return_exceptions=True)
    assert order == list(range(0, 300, 4))
    assert len(queues) == 0


async def test_snapshot_counts_per_kind() -> None:
    queues, gate = WorkQueues(), Gate()
    vm = sig("vm")

    async def boom() -> None:
        raise RuntimeError("x")

    async def quick() -> None:
        return None

    head = asyncio.create_task(queues.run(vm, gate))
    await gate.started.wait()
    waiter = asyncio.create_task(queues.run(vm, quick))
    failing = asyncio.create_task(queues.run(vm, boom))
    await spin()
    live = queues.snapshot()["vm"]
    assert (live.queues, live.running, live.waiting) == (1, 1, 2)
    await asyncio.sleep(0.01)  # a measurable wait for the two waiters
    gate.opened.set()
    await head
    await waiter
    with pytest.raises(RuntimeError):
        await failing
    await queues.run(f"host:{uuid.uuid4()}", quick)
    snap = queues.snapshot()
    vm_stats = snap["vm"]
    assert (vm_stats.queues, vm_stats.running, vm_stats.waiting) == (0, 0, 0)
    assert (vm_stats.completed, vm_stats.failed) == (2, 1)
    assert vm_stats.max_wait_s >= 0.01
    assert vm_stats.total_wait_s >= 2 * 0.01
    assert vm_stats.total_run_s >= 0.01
    assert snap["host"].completed == 1
    assert snap["host"].failed == 0


async def test_level_below_one_is_rejected() -> None:
    async def quick() -> None:
        return None

    with pytest.raises(ValueError, match="level"):
        await WorkQueues().run(sig(), quick, level=0)
