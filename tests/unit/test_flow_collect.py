"""Trace collectors: every chain run a task causes reports its trace to the collector that
task set (success, failure, cancellation; nested runs too), tasks it starts see it, other
tasks do not, and a closed or full collector takes nothing more."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import pytest

from zstackpy.core.errors import ZError
from zstackpy.core.flow import Flow, FlowChain, TraceCollector, collecting


@dataclass
class Ctx:
    blocker: asyncio.Event


class Ok(Flow[Ctx]):
    async def run(self, ctx: Ctx) -> None:
        return None


class Fails(Flow[Ctx]):
    async def run(self, ctx: Ctx) -> None:
        raise ZError("TEST.1", "boom")


class Blocks(Flow[Ctx]):
    async def run(self, ctx: Ctx) -> None:
        await ctx.blocker.wait()


class RunsInner(Flow[Ctx]):
    """A flow that runs a chain of its own, as allocate-vm-host runs host-allocate."""

    async def run(self, ctx: Ctx) -> None:
        await FlowChain("inner", [("inner-ok", Ok)]).run(ctx)


def ctx() -> Ctx:
    return Ctx(blocker=asyncio.Event())


async def test_success_failure_and_nested_runs_are_collected() -> None:
    async def job() -> list[dict[str, object]]:
        collector = collecting()
        await FlowChain("outer", [("runs-inner", RunsInner), ("ok", Ok)]).run(ctx())
        with pytest.raises(ZError):
            await FlowChain("failing", [("ok", Ok), ("fails", Fails)]).run(ctx())
        return collector.close()

    traces = await asyncio.create_task(job())
    # in the order the runs started: the chain around a flow before the chain it runs
    assert [(t["chain"], t["outcome"]) for t in traces] == [
        ("outer", "done"),
        ("inner", "done"),
        ("failing", "failed"),
    ]
    assert traces[0]["steps"] == 2
    failing = traces[2]["entries"]
    assert isinstance(failing, list)
    assert [e["outcome"] for e in failing] == ["rolled-back", "failed"]


async def test_a_run_still_going_shows_how_far_it_came() -> None:
    c = ctx()
    box: list[TraceCollector] = []

    async def job() -> None:
        box.append(collecting())
        await FlowChain("slow", [("ok", Ok), ("blocks", Blocks), ("after", Ok)]).run(c)

    task = asyncio.create_task(job())
    await asyncio.sleep(0.01)
    (live,) = box[0].snapshot()
    assert live["outcome"] == "running"
    assert live["steps"] == 3
    assert [(e["step"], e["outcome"]) for e in live["entries"]] == [
        ("ok", "done"),
        ("blocks", "running"),
    ]
    c.blocker.set()
    await task
    (done,) = box[0].close()
    assert done["outcome"] == "done"
    assert [e["outcome"] for e in done["entries"]] == ["done", "done", "done"]


async def test_tasks_started_under_a_collector_report_to_it_others_do_not() -> None:
    async def job() -> TraceCollector:
        collector = collecting()
        await asyncio.create_task(FlowChain("child", [("ok", Ok)]).run(ctx()))
        return collector

    collector = await asyncio.create_task(job())
    await FlowChain("elsewhere", [("ok", Ok)]).run(ctx())  # this task set no collector
    assert [t.chain for t in collector.traces] == ["child"]


async def test_a_cancelled_run_is_collected() -> None:
    c = ctx()

    async def job(collector_box: list[TraceCollector]) -> None:
        collector_box.append(collecting())
        await FlowChain("cancelled", [("ok", Ok), ("blocks", Blocks)]).run(c)

    box: list[TraceCollector] = []
    task = asyncio.create_task(job(box))
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    (trace,) = box[0].close()
    assert trace["chain"] == "cancelled"
    assert trace["outcome"] == "failed"


async def test_closed_or_full_collector_takes_nothing_more() -> None:
    async def job() -> TraceCollector:
        collector = collecting()
        collector.limit = 2
        for _ in range(3):
            await FlowChain("many", [("ok", Ok)]).run(ctx())
        collector.close()
        await FlowChain("late", [("ok", Ok)]).run(ctx())
        return collector

    collector = await asyncio.create_task(job())
    assert [t.chain for t in collector.traces] == ["many", "many"]
