"""The processes' event loop: uvloop by default, asyncio's when asked, a clear error else."""

from __future__ import annotations

import asyncio

import pytest

from zstackpy.core import eventloop


async def _loop_name() -> str:
    await asyncio.sleep(0)
    return eventloop.loop_name()


def test_runs_on_uvloop_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(eventloop.ENV, raising=False)
    assert eventloop.run(_loop_name()) == eventloop.UVLOOP


def test_standard_loop_when_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(eventloop.ENV, "asyncio")
    assert eventloop.run(_loop_name()) == eventloop.STANDARD


def test_an_unknown_loop_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(eventloop.ENV, "trio")
    with pytest.raises(ValueError, match="ZSTACK_EVENT_LOOP must be"):
        eventloop.run(_loop_name())
