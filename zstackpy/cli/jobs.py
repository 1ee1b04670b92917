"""Waiting for an async API's job (``202`` + location): poll until it ends, showing a
spinner with the elapsed time on a terminal. Ctrl-C and ``--timeout`` stop the waiting,
never the job: the caller prints how to poll it later."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext

from zstackpy.cli.client import Answer, Client

# Short first polls: most jobs on a healthy node end within a few hundred milliseconds.
_FIRST_POLL_S = 0.05
_MAX_POLL_S = 1.0


class StillRunningError(Exception):
    """The wait ended (interrupted or timed out) before the job."""

    def __init__(self, job_uuid: str, interrupted: bool) -> None:
        super().__init__(job_uuid)
        self.job_uuid, self.interrupted = job_uuid, interrupted


def job_uuid(location: str) -> str:
    return location.rstrip("/").rsplit("/", 1)[-1]


def wait(client: Client, location: str, label: str, timeout_s: float | None, show: bool) -> Answer:
    """The job's final answer (200 result or the error). Raises StillRunningError."""
    uuid = job_uuid(location)
    path = client.job_path(location)
    started = time.monotonic()
    interval = _FIRST_POLL_S
    with _spinner(label, uuid, started) if show else nullcontext():
        try:
            while True:
                answer = client.request("GET", path)
                if answer.status != 202:
                    return answer
                if timeout_s is not None and time.monotonic() - started >= timeout_s:
                    raise StillRunningError(uuid, interrupted=False)
                time.sleep(interval)
                interval = min(interval * 2, _MAX_POLL_S)
        except KeyboardInterrupt:
            raise StillRunningError(uuid, interrupted=True) from None


@contextmanager
def _spinner(label: str, uuid: str, started: float) -> Iterator[None]:
    from rich.console import Console
    from rich.text import Text

    class _Elapsed:
        # Rendered on every refresh, so the seconds tick without our polling loop's help.
        def __rich__(self) -> Text:
            return Text(f"{label}: running {time.monotonic() - started:.1f} s (job {uuid})")

    console = Console(stderr=True)
    with console.status(_Elapsed()):
        yield


def show_progress() -> bool:
    return sys.stderr.isatty()


def poll_hint(base_argv0: str, uuid: str, base_url: str) -> str:
    return (
        f"job {uuid} is still running; it goes on without the CLI. Poll it with:\n"
        f"  {base_argv0} GetApiJob uuid={uuid}\n"
        f"  curl {base_url}/zstack/v1/api-jobs/{uuid}"
    )
