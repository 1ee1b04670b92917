"""The interactive shell: ZStack's ``>>>`` prompt (prefixed by the logged-in account, ``-``
when logged out), Tab completion, history kept across runs (passwords scrubbed)."""

from __future__ import annotations

import os
import re
import shlex
import sys

from prompt_toolkit import PromptSession
from prompt_toolkit.history import FileHistory

from zstackpy.cli.completion import CliCompleter, LiveLookup
from zstackpy.cli.runner import OK, Runner
from zstackpy.cli.settings import state_dir

_SECRET = re.compile(r"((?:\w*[Pp]assword)=)(\"[^\"]*\"|'[^']*'|\S+)")


def scrub(line: str) -> str:
    """The line with every ``*password=`` value masked, as it goes to the history file."""
    return _SECRET.sub(r"\1***", line)


class ScrubbedHistory(FileHistory):
    def store_string(self, string: str) -> None:
        super().store_string(scrub(string))
        os.chmod(self.filename, 0o600)


def prompt_text(runner: Runner) -> str:
    return f"{runner.login.account if runner.login else '-'} >>> "


def run_shell(runner: Runner) -> int:
    history_dir = state_dir()
    history_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    session: PromptSession[str] = PromptSession(
        history=ScrubbedHistory(str(history_dir / "history")),
        completer=CliCompleter(lambda: runner.catalogue, LiveLookup(runner.client)),
        # Tab only: completing while typing would ask the node on every key.
        complete_while_typing=False,
    )
    sys.stdout.write(
        f"zstack-cli on {runner.settings.base_url}; Tab completes, 'help' lists actions, "
        "Ctrl-D leaves.\n"
    )
    while True:
        try:
            line = session.prompt(prompt_text(runner))
        except KeyboardInterrupt:
            continue
        except EOFError:
            return OK
        try:
            words = shlex.split(line)
        except ValueError as exc:
            sys.stderr.write(f"zstack-cli: {exc}\n")
            continue
        if not words:
            continue
        if words[0] in ("exit", "quit"):
            return OK
        try:
            runner.run(words)
        except KeyboardInterrupt:
            # A sync call cannot be taken back: the node finishes it anyway.
            sys.stderr.write("\ninterrupted\n")
