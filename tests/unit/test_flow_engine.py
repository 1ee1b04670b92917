"""Flow chains: order, reverse rollback, error preservation, nesting, cancellation, trace."""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass, field

import pytest

from zstackpy.core.errors import KernelErr, SysErr, ZError
from zstackpy.core.flow import Flow, FlowChain, FlowTrace, Outcome, trace_of
from zstackpy.core.flow.engine import FlowFactory


@dataclass
class Ctx:
    events: list[str] = field(default_factory=list)
    blocker: asyncio.Event = field(default_factory=asyncio.Event)


class Step(Flow[Ctx]):
    """Records run/rollback in ctx.events; can fail either, or block in run."""

    def __init__(
        self,
        name: str,
        *,
        fail: BaseException | None = None,
        fail_rollback: BaseException | None = None,
        block: bool = False,
    ) -> None:
        self.name, self.fail, self.fail_rollback, self.block = name, fail, fail_rollback, block

    async def run(self, ctx: Ctx) -> None:
        ctx.events.append(f"run {self.name}")
        if self.block:
            await ctx.blocker.wait()
        if self.fail is not None:
            raise self.fail

    async def rollback(self, ctx: Ctx) -> None:
        ctx.events.append(f"rollback {self.name}")
        if self.fail_rollback is not None:
            raise self.fail_rollback


def step(
    name: str,
    *,
    fail: BaseException | None = None,
    fail_rollback: BaseException | None = None,
    block: bool = False,
) -> tuple[str, FlowFactory]:
    return name, lambda: Step(name, fail=fail, fail_rollback=fail_rollback, block=block)


def outcomes(trace: FlowTrace) -> dict[str, Outcome]:
    return {e.step: e.outcome for e in trace.flat()}


async def test_runs_in_order_and_traces_every_flow() -> None:
    chain = FlowChain("create-vm", [step("a"), step("b"), step("c")])
    ctx = Ctx()
    trace = await chain.run(ctx)
    assert ctx.events == ["run a", "run b", "run c"]
    assert trace.outcome is Outcome.DONE
    assert [e.step for e in trace.entries] == ["a", "b", "c"]
    assert all(e.outcome is Outcome.DONE for e in trace.entries)
    assert trace.entries[0].offset_s <= trace.entries[1].offset_s <= trace.entries[2].offset_s
    assert trace.duration_s >= sum(e.duration_s for e in trace.entries)
    as_json = json.loads(json.dumps(trace.to_dict()))
    assert as_json["chain"] == "create-vm"
    assert as_json["entries"][1]["step"] == "b"
    assert as_json["entries"][1]["outcome"] == "done"
    assert as_json["entries"][1]["started_at"] >= as_json["started_at"]


async def test_factory_makes_a_fresh_flow_per_run() -> None:
    made: list[Step] = []

    def factory() -> Step:
        made.append(Step("a"))
        return made[-1]

    chain = FlowChain("c", [("a", factory)])
    await chain.run(Ctx())
    await chain.run(Ctx())
    assert len(made) == 2
    assert made[0] is not made[1]


async def test_failure_rolls_back_in_reverse_including_the_failed_flow() -> None:
    original = ZError(SysErr.OPERATION, "host said no", host="h1")
    chain = FlowChain("c", [step("a"), step("b"), step("c", fail=original), step("d")])
    ctx = Ctx()
    with pytest.raises(ZError) as info:
        await chain.run(ctx)
    assert info.value is original
    assert ctx.events == ["run a", "run b", "run c", "rollback c", "rollback b", "rollback a"]
    assert "rollback_errors" not in original.details
    trace = trace_of(info.value)
    assert trace is not None
    assert trace.outcome is Outcome.FAILED
    assert outcomes(trace) == {
        "a": Outcome.ROLLED_BACK,
        "b": Outcome.ROLLED_BACK,
        "c": Outcome.FAILED,
        "d": Outcome.SKIPPED,
    }
    failed = trace.entries[2]
    assert failed.error is not None
    assert failed.error.code == SysErr.OPERATION
    assert failed.rollback_duration_s is not None
    assert trace.error is not None
    assert trace.error.details == {"host": "h1"}
    json.dumps(trace.to_dict())


async def test_rollback_errors_are_attached_and_logged_not_masking(
    caplog: pytest.LogCaptureFixture,
) -> None:
    original = ZError(SysErr.OPERATION, "create failed")
    chain = FlowChain(
        "c",
        [
            step("a"),
            step("b", fail_rollback=RuntimeError("cannot release")),
            step("c", fail=original, fail_rollback=ZError(SysErr.IO, "disk gone")),
        ],
    )
    ctx = Ctx()
    with (
        caplog.at_level(logging.ERROR, logger="zstackpy.core.flow.engine"),
        pytest.raises(ZError) as info,
    ):
        await chain.run(ctx)
    assert info.value is original
    # every rollback is attempted although earlier ones failed
    assert ctx.events[-3:] == ["rollback c", "rollback b", "rollback a"]
    errors = original.details["rollback_errors"]
    assert [e["code"] for e in errors] == [SysErr.IO, SysErr.INTERNAL]
    assert errors[1]["details"] == {"exception": "RuntimeError", "message": "cannot release"}
    trace = trace_of(original)
    assert trace is not None
    assert outcomes(trace) == {
        "a": Outcome.ROLLED_BACK,
        "b": Outcome.ROLLBACK_FAILED,
        "c": Outcome.FAILED,
    }
    assert trace.entries[2].rollback_error is not None
    assert len([r for r in caplog.records if "rollback of" in r.getMessage()]) == 2


async def test_non_zerror_is_wrapped_with_its_cause() -> None:
    boom = ValueError("bad value")
    chain = FlowChain("c", [step("a"), step("b", fail=boom)])
    with pytest.raises(ZError) as info:
        await chain.run(Ctx())
    err = info.value
    assert err.code == KernelErr.FLOW_FAILED
    assert err.__cause__ is boom
    assert err.cause is not None
    assert err.cause.details == {"exception": "ValueError", "message": "bad value"}
    assert err.details["chain"] == "c"
    assert err.details["flow"] == "b"
    assert trace_of(err) is not None


async def test_factory_failure_fails_that_step_without_rolling_it_back() -> None:
    def broken() -> Step:
        raise RuntimeError("no deps")

    ctx = Ctx()
    chain = FlowChain("c", [step("a"), ("b", broken)])
    with pytest.raises(ZError) as info:
        await chain.run(ctx)
    assert info.value.details["flow"] == "b"
    assert ctx.events == ["run a", "rollback a"]


async def test_later_outer_failure_rolls_back_the_inner_chain_too() -> None:
    inner = FlowChain("inner", [step("b"), step("c")])
    outer = FlowChain("outer", [step("a"), inner, step("d", fail=ZError(SysErr.IO, "x"))])
    ctx = Ctx()
    with pytest.raises(ZError) as info:
        await outer.run(ctx)
    assert ctx.events == [
        "run a",
        "run b",
        "run c",
        "run d",
        "rollback d",
        "rollback c",
        "rollback b",
        "rollback a",
    ]
    trace = trace_of(info.value)
    assert trace is not None
    inner_entry = trace.entries[1]
    assert inner_entry.is_chain
    assert inner_entry.outcome is Outcome.ROLLED_BACK
    assert [c.outcome for c in inner_entry.children] == [Outcome.ROLLED_BACK] * 2
    as_json = trace.to_dict()
    assert [c["step"] for c in as_json["entries"][1]["children"]] == ["b", "c"]


async def test_inner_failure_rolls_back_inner_then_outer_and_skips_the_rest() -> None:
    inner = FlowChain("inner", [step("b"), step("c", fail=KeyError("k")), step("x")])
    outer = FlowChain("outer", [step("a"), inner, step("d")])
    ctx = Ctx()
    with pytest.raises(ZError) as info:
        await outer.run(ctx)
    assert ctx.events == ["run a", "run b", "run c", "rollback c", "rollback b", "rollback a"]
    assert info.value.details["flow"] == "inner/c"
    trace = trace_of(info.value)
    assert trace is not None
    assert [e.outcome for e in trace.entries] == [
        Outcome.ROLLED_BACK,
        Outcome.FAILED,
        Outcome.SKIPPED,
    ]
    assert outcomes(trace)["x"] is Outcome.SKIPPED


async def test_cancellation_rolls_back_then_reraises() -> None:
    chain = FlowChain("c", [step("a"), step("b", block=True), step("c")])
    ctx = Ctx()
    task = asyncio.create_task(chain.run(ctx))
    for _ in range(10):
        await asyncio.sleep(0)
    assert ctx.events == ["run a", "run b"]
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert ctx.events == ["run a", "run b", "rollback b", "rollback a"]


async def test_empty_chain_succeeds() -> None:
    trace = await FlowChain("nothing", []).run(Ctx())
    assert trace.entries == []
    assert trace.outcome is Outcome.DONE


async def test_error_through_two_chain_runs_keeps_both_rollback_errors() -> None:
    inner = FlowChain(
        "inner",
        [step("b", fail_rollback=RuntimeError("inner")), step("c", fail=ZError(SysErr.IO, "x"))],
    )

    class RunsInner(Flow[Ctx]):
        async def run(self, ctx: Ctx) -> None:
            await inner.run(ctx)

    outer = FlowChain(
        "outer", [step("a", fail_rollback=RuntimeError("outer")), ("runs-inner", RunsInner)]
    )
    with pytest.raises(ZError) as info:
        await outer.run(Ctx())
    errors = info.value.details["rollback_errors"]
    assert [e["details"]["message"] for e in errors] == ["inner", "outer"]
    trace = trace_of(info.value)
    assert trace is not None
    assert trace.chain == "outer"
