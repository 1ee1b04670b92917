"""Flows and chains: run steps in order; on failure roll back in reverse, keep the cause.

Rollback set: the flows that completed **and the flow that failed** (ZStack's
``SimpleFlowChain.fail()`` does the same). A ``run`` may stop half-way, so ``rollback``
must release exactly what ``run`` recorded in the context and tolerate finding nothing.

A nested chain is one step of its parent but shares the parent's rollback stack, so a
failure anywhere rolls back every flow that ran, innermost and latest first.
"""

from __future__ import annotations

import asyncio
import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

from zstackpy.core.errors import ErrorInfo, KernelErr, SysErr, ZError, error_info_of
from zstackpy.core.flow.collect import record_trace
from zstackpy.core.flow.trace import FlowTrace, Outcome, TraceEntry

__all__ = ["Flow", "FlowChain", "FlowFactory"]

log = logging.getLogger(__name__)

C = TypeVar("C")
C_contra = TypeVar("C_contra", contravariant=True)


class Flow(ABC, Generic[C_contra]):
    """One step of a chain, sharing the chain's typed context ``C``.

    A new instance is made for every chain run (by the registered factory), so instance
    attributes are private to one run. ``run`` raises to fail the chain; ``rollback``
    undoes what ``run`` did, including a ``run`` that failed half-way.
    """

    @abstractmethod
    async def run(self, ctx: C_contra) -> None: ...

    async def rollback(self, ctx: C_contra) -> None:
        """Undo ``run``; the default has nothing to undo."""
        return None


FlowFactory = Callable[[], Flow[Any]]

_Undo = tuple[Flow[Any], TraceEntry]


class FlowChain:
    """A resolved, runnable chain: each step a flow factory or a nested ``FlowChain``.

    Built by ``FlowRegistry`` from YAML, or directly (tests, code-defined chains).
    """

    __slots__ = ("name", "steps")

    def __init__(self, name: str, steps: Sequence[tuple[str, FlowFactory] | FlowChain]) -> None:
        self.name = name
        self.steps: tuple[tuple[str, FlowFactory] | FlowChain, ...] = tuple(steps)

    def __repr__(self) -> str:
        return f"FlowChain({self.name!r}, {self.step_ids()!r})"

    def step_ids(self) -> list[str]:
        """Step names in order: flow ids and nested chain names."""
        return [s.name if isinstance(s, FlowChain) else s[0] for s in self.steps]

    async def run(self, ctx: object) -> FlowTrace:
        """Run every step with ``ctx``; return the trace.

        On failure roll back (see module doc), then raise the original error: a ``ZError``
        as is, anything else wrapped in ``ZError(FLOW_FAILED)`` with the cause. Either way
        the error gets a ``trace`` attribute (see ``trace_of``) and, if rollbacks failed,
        ``details["rollback_errors"]`` (ErrorInfo dicts); rollback errors are also logged.
        On cancellation, roll back and re-raise ``CancelledError``; a second cancellation
        interrupts the rollback. The trace goes to the caller's collector, if one is set
        (``collect.collecting``), when the run starts; it fills in as the run goes.
        """
        trace = FlowTrace(
            chain=self.name,
            started_at=time.time(),
            outcome=Outcome.RUNNING,
            steps=len(self.steps),
        )
        # Handed over at the start: whoever collects can watch the run while it goes.
        record_trace(trace)
        t0 = time.perf_counter()
        undo: list[_Undo] = []
        try:
            await _run_steps(self, ctx, trace.entries, undo, t0)
        except asyncio.CancelledError:
            trace.error = ErrorInfo(code=SysErr.CANCELED, description="chain run was cancelled")
            await self._rollback(ctx, undo, t0)
            self._finish(trace, t0)
            raise
        except Exception as exc:
            trace.error = error_info_of(exc)
            rollback_errors = await self._rollback(ctx, undo, t0)
            self._finish(trace, t0)
            err = self._failure(exc, trace, rollback_errors)
            if err is exc:
                raise
            raise err from exc
        trace.duration_s = time.perf_counter() - t0
        trace.outcome = Outcome.DONE
        return trace

    def _finish(self, trace: FlowTrace, t0: float) -> None:
        trace.outcome = Outcome.FAILED
        trace.duration_s = time.perf_counter() - t0
        for entry in trace.entries:
            entry.settle()

    async def _rollback(self, ctx: object, undo: list[_Undo], t0: float) -> list[ErrorInfo]:
        errors: list[ErrorInfo] = []
        for flow, entry in reversed(undo):
            started = time.perf_counter()
            try:
                await flow.rollback(ctx)
            except Exception as exc:
                info = error_info_of(exc)
                errors.append(info)
                entry.rollback_error = info
                if entry.outcome is not Outcome.FAILED:
                    entry.outcome = Outcome.ROLLBACK_FAILED
                log.error("chain %s: rollback of %s failed", self.name, entry.step, exc_info=exc)
            else:
                if entry.outcome is not Outcome.FAILED:
                    entry.outcome = Outcome.ROLLED_BACK
            finally:
                entry.rollback_duration_s = time.perf_counter() - started
        return errors

    def _failure(
        self, exc: Exception, trace: FlowTrace, rollback_errors: list[ErrorInfo]
    ) -> ZError:
        if isinstance(exc, ZError):
            err = exc
        else:
            failed = _failed_step(trace.entries)
            err = ZError(
                KernelErr.FLOW_FAILED,
                f"flow {failed} of chain {self.name} failed: {type(exc).__name__}: {exc}",
                cause=error_info_of(exc),
                chain=self.name,
                flow=failed,
            )
        if rollback_errors:
            # extend: the same ZError may already carry a chain run inside one of our flows
            err.details.setdefault("rollback_errors", []).extend(
                e.model_dump(mode="json") for e in rollback_errors
            )
        err.trace = trace
        return err


async def _run_steps(
    chain: FlowChain, ctx: object, entries: list[TraceEntry], undo: list[_Undo], t0: float
) -> None:
    """Run ``chain``'s steps, appending entries; shared ``undo`` collects what to roll back."""
    perf = time.perf_counter
    steps = chain.steps
    for index, step in enumerate(steps):
        started = perf()
        if isinstance(step, FlowChain):
            entry = TraceEntry(
                step.name, is_chain=True, offset_s=started - t0, outcome=Outcome.RUNNING
            )
            entries.append(entry)
            try:
                await _run_steps(step, ctx, entry.children, undo, t0)
            except BaseException:
                entry.duration_s = perf() - started
                entry.outcome = Outcome.FAILED
                _skip_rest(steps, index, entries)
                raise
            entry.duration_s = perf() - started
            entry.outcome = Outcome.DONE
            continue
        flow_id, factory = step
        entry = TraceEntry(flow_id, offset_s=started - t0, outcome=Outcome.RUNNING)
        entries.append(entry)
        try:
            flow = factory()
            # registered before run(): a flow that fails half-way is rolled back too
            undo.append((flow, entry))
            await flow.run(ctx)
        except BaseException as exc:
            entry.duration_s = perf() - started
            entry.outcome = Outcome.FAILED
            entry.error = (
                ErrorInfo(code=SysErr.CANCELED, description="flow was cancelled")
                if isinstance(exc, asyncio.CancelledError)
                else error_info_of(exc)
            )
            _skip_rest(steps, index, entries)
            raise
        entry.duration_s = perf() - started
        entry.outcome = Outcome.DONE


def _skip_rest(
    steps: Sequence[tuple[str, FlowFactory] | FlowChain], index: int, entries: list[TraceEntry]
) -> None:
    for step in steps[index + 1 :]:
        if isinstance(step, FlowChain):
            entries.append(TraceEntry(step.name, is_chain=True))
        else:
            entries.append(TraceEntry(step[0]))


def _failed_step(entries: list[TraceEntry]) -> str:
    """Path of the step whose run raised, e.g. ``inner-chain/allocate-nics``."""
    for entry in entries:
        if entry.outcome is Outcome.FAILED:
            if entry.is_chain:
                return f"{entry.step}/{_failed_step(entry.children)}"
            return entry.step
    return ""
