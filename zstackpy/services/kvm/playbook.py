"""One run of a playbook of ``ansible/`` through ansible-runner (blocking: the deployer
calls ``run_playbook`` in a worker thread, never on the event loop).

Secrets (the host's SSH password, the agent token) go to ansible-runner as extra
variables in a private directory that only this process can read and that is deleted
after the run; the playbooks write them with ``no_log``. Whatever the run printed is
scrubbed of every secret before anyone sees it, so neither logs nor the output kept on
the host's record ever hold one.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ansible_runner

REDACTED = "********"
MAX_OUTPUT_CHARS = 64_000  # the tail is kept: the end of a run is where failures are


@dataclass(frozen=True)
class PlaybookRun:
    """``host``: the machine (an IP or name); ``extra_vars``: the playbook's variables,
    secrets included; ``secrets``: every value that must not appear in the output."""

    playbook: Path
    host: str
    extra_vars: Mapping[str, Any]
    secrets: tuple[str, ...] = ()
    ssh_port: int = 22
    username: str = "root"
    ssh_key_file: Path | None = None  # None: the password in extra_vars (or the node's agent)
    become: bool = False  # sudo on the machine (a user other than root)
    timeout_s: int = 900
    env: Mapping[str, str] = field(default_factory=dict)

    def __repr__(self) -> str:  # never print the variables: they hold the secrets
        return f"PlaybookRun({self.playbook.name} on {self.host})"


@dataclass(frozen=True, slots=True)
class PlaybookResult:
    ok: bool
    status: str  # ansible-runner's: successful, failed, timeout, canceled
    output: str  # scrubbed of the secrets
    failed_task: str | None = None  # the first task that failed or could not reach the host
    failure: str | None = None  # its message, scrubbed
    changed_tasks: tuple[str, ...] = ()  # what the run changed: none on a machine already right


def redact(text: str, secrets: Iterable[str]) -> str:
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    return text


def run_playbook(run: PlaybookRun) -> PlaybookResult:
    """Run the playbook against ``run.host`` and wait for it. Never raises for a failing
    play: the result says which task failed."""
    private = Path(tempfile.mkdtemp(prefix="zstackpy-ansible-"))
    try:
        os.chmod(private, 0o700)
        return _run_in(private, run)
    finally:
        shutil.rmtree(private, ignore_errors=True)


def _run_in(private: Path, run: PlaybookRun) -> PlaybookResult:
    host_vars: dict[str, Any] = {
        "ansible_host": run.host,
        "ansible_port": run.ssh_port,
        "ansible_user": run.username,
    }
    if run.ssh_key_file is not None:
        host_vars["ansible_ssh_private_key_file"] = str(run.ssh_key_file)
    if run.become:
        # A host variable, not an extra one: the tasks run on the node (become: false) keep
        # their word, which an extra variable would override.
        host_vars["ansible_become"] = True
    extra = dict(run.extra_vars)
    if extra.get("ansible_connection") == "local":
        # A local run uses this Python: the machine's default one may lack what modules need.
        extra.setdefault("ansible_python_interpreter", sys.executable)
    envvars = {
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "ANSIBLE_LOCAL_TEMP": str(private / "tmp"),
        "ANSIBLE_REMOTE_TEMP": "~/.ansible/tmp",
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_RETRY_FILES_ENABLED": "0",
        # One connection per module instead of a copy then a run (a quarter off every
        # deployment); it needs sudo without requiretty, which Debian's sudoers is.
        "ANSIBLE_PIPELINING": "True",
        # A host being added has never been seen: its key cannot be known beforehand.
        "ANSIBLE_HOST_KEY_CHECKING": "False",
        # ansible-playbook of this Python's environment first (a virtual environment's bin
        # directory is rarely on the service's PATH).
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
        **run.env,
    }
    result = ansible_runner.run(
        private_data_dir=str(private),
        playbook=str(run.playbook.resolve()),
        inventory={"all": {"hosts": {"target": host_vars}}},
        extravars=extra,
        envvars=envvars,
        quiet=True,
        timeout=run.timeout_s,
    )
    stdout = result.stdout
    with stdout:
        output = redact(stdout.read(), run.secrets)
    events = list(result.events)
    failed_task, failure = _first_failure(events, run.secrets)
    ok = result.status == "successful" and result.rc == 0
    return PlaybookResult(
        ok=ok,
        status=str(result.status),
        output=output[-MAX_OUTPUT_CHARS:],
        failed_task=failed_task,
        failure=failure,
        changed_tasks=_changed_tasks(events),
    )


def _first_failure(
    events: Iterable[dict[str, Any]], secrets: Iterable[str]
) -> tuple[str | None, str | None]:
    for event in events:
        if event.get("event") not in ("runner_on_failed", "runner_on_unreachable"):
            continue
        data = event.get("event_data") or {}
        if data.get("ignore_errors"):
            continue
        result = data.get("res") or {}
        message = result.get("msg") if isinstance(result, dict) else None
        if not message and isinstance(result, dict):
            message = result.get("stderr") or result.get("module_stderr")
        task = str(data.get("task") or "?")
        return task, redact(str(message or "no message"), secrets)[:2000]
    return None, None


def _changed_tasks(events: Iterable[dict[str, Any]]) -> tuple[str, ...]:
    changed: list[str] = []
    for event in events:
        data = event.get("event_data") or {}
        result = data.get("res")
        if event.get("event") != "runner_on_ok" or not isinstance(result, dict):
            continue
        if result.get("changed"):
            changed.append(str(data.get("task") or "?"))
    return tuple(changed)
