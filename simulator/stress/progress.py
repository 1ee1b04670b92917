"""Live progress on stderr: a rich progress bar (done/total, rate, ETA) on a terminal, a
plain line every few seconds otherwise (CI logs, pipes)."""

from __future__ import annotations

import sys
import time
from types import TracebackType
from typing import Self

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

PLAIN_EVERY_S = 5.0


class _Rate(ProgressColumn):
    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:,.1f}/s" if speed else "-/s", style="progress.data.speed")


class Phase:
    """One counted phase (``advance`` as items finish; ``errors`` counts failures)."""

    def __init__(self, live: LiveProgress, name: str, total: int) -> None:
        self.live = live
        self.name = name
        self.total = total
        self.done = 0
        self.errors = 0
        self.started = time.monotonic()
        self._last_line = self.started
        self._task: TaskID | None = None
        if live.progress is not None:
            self._task = live.progress.add_task(name, total=total, errors=0)

    def advance(self, *, failed: bool = False) -> None:
        self.advance_by(1, failed=int(failed))

    def advance_by(self, n: int, *, failed: int = 0) -> None:
        """``n`` items finished, ``failed`` of them failed (bulk phases report chunks)."""
        self.done += n
        self.errors += failed
        if self.live.progress is not None and self._task is not None:
            self.live.progress.update(self._task, advance=n, errors=self.errors)
            return
        now = time.monotonic()
        if now - self._last_line >= PLAIN_EVERY_S or self.done == self.total:
            self._last_line = now
            self.live.line(self._describe(now))

    def _describe(self, now: float) -> str:
        elapsed = max(now - self.started, 1e-9)
        rate = self.done / elapsed
        eta = (self.total - self.done) / rate if rate > 0 else float("inf")
        return (
            f"{self.name}: {self.done}/{self.total} ({self.errors} errors) "
            f"{rate:,.1f}/s, {elapsed:.0f} s elapsed, ETA {eta:.0f} s"
        )


class LiveProgress:
    def __init__(self, *, force_plain: bool = False) -> None:
        self.console = Console(stderr=True)
        self.progress: Progress | None = None
        if self.console.is_terminal and not force_plain:
            self.progress = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[errors]} errors"),
                _Rate(),
                TimeElapsedColumn(),
                TextColumn("ETA"),
                TimeRemainingColumn(),
                console=self.console,
            )

    def phase(self, name: str, total: int) -> Phase:
        return Phase(self, name, total)

    def line(self, text: str) -> None:
        if self.progress is not None:
            self.progress.console.print(text)
        else:
            print(text, file=sys.stderr, flush=True)

    def __enter__(self) -> Self:
        if self.progress is not None:
            self.progress.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.progress is not None:
            self.progress.stop()
