"""A second shrink, over the log: delta debugging of a failing example's steps, each
candidate replayed on a fresh node.

Hypothesis shrinks the numbers its rules drew, and a step's meaning depends on the model
when it is drawn (a VM is "the 5th, modulo the VMs made so far"), so deleting one step
can change what the later ones do and Hypothesis stops at a long local minimum when a
failure needs a particular history. Here steps are deleted as written, with their walk
indexes kept (a step naming a VM a deletion removed does nothing), until no single
deletion keeps the failure. A failure counts as the same when its kind is: the invariant
it broke, or the error code the model did not expect.
"""

from __future__ import annotations

import re

from simulator.walker.actionlog import Log
from simulator.walker.cloud import WalkConfig
from simulator.walker.invariants import CHECKS
from simulator.walker.replay import replay
from simulator.walker.steps import Step

_CODE = re.compile(r"\b[A-Z]+\.\d{4}\b")


def failure_kind(text: str) -> str:
    """ "capacity", "no-stuck", ...; else the unexpected error code; else the text's start."""
    text = text.removeprefix("after the walk, with every VM expunged: ")
    head = text.split(":", 1)[0]
    if head in CHECKS:
        return head
    codes = _CODE.findall(text)
    return codes[0] if codes else text[:40]


async def reduce(
    config: WalkConfig, steps: list[Step], failure: str, *, max_replays: int = 60
) -> tuple[list[Step], str]:
    """The shortest sub-list of ``steps`` found (within ``max_replays`` replays) whose
    replay fails the same way, and that failure."""
    kind = failure_kind(failure)
    replays = 0

    async def fails(candidate: list[Step]) -> str | None:
        nonlocal replays
        replays += 1
        outcome = await replay(Log(None, config, {0: candidate}), 0)
        if outcome.failure is not None and failure_kind(outcome.failure) == kind:
            return outcome.failure
        return None

    current, text = list(steps), failure
    chunks = 2
    while len(current) > 1 and replays < max_replays:
        size = max(1, len(current) // chunks)
        for start in range(0, len(current), size):
            candidate = current[:start] + current[start + size :]
            found = await fails(candidate) if candidate else None
            if found is not None:
                current, text = candidate, found
                chunks = max(chunks - 1, 2)
                break
            if replays >= max_replays:
                break
        else:
            if size == 1:
                break
            chunks = min(len(current), chunks * 2)
    return current, text
