"""``zstack-cli``: one command from the arguments, or the interactive shell without them.

Kept light: argparse and the stdlib HTTP client only; rich and prompt_toolkit are imported
when a table is printed or the shell starts.
"""

from __future__ import annotations

import argparse
import os
import shlex
import signal
import sys
from typing import TYPE_CHECKING

from zstackpy.cli.settings import UsageError, resolve

if TYPE_CHECKING:
    from zstackpy.cli.runner import Runner

_EPILOG = """\
examples:
  zstack-cli LogInByAccount accountName=admin password=secret
  zstack-cli CreateZone name=z1
  zstack-cli QueryVmInstance state=Running fields=uuid,name -o json
  zstack-cli help CreateVmInstance
settings: flags beat ZSTACK_CLI_HOST/PORT/OUTPUT/TIMEOUT, which beat the config file
(~/.config/zstack-cli/config.toml, or --config / ZSTACK_CLI_CONFIG).
exit status: 0 ok, 1 API error or node unreachable, 2 usage, 130 interrupted."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="zstack-cli",
        description="ZStack's command line over zstackpy's REST API. Without an action: "
        "the interactive shell.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("-H", "--host", help="management node address (default 127.0.0.1)")
    parser.add_argument("-p", "--port", help="management node port (default 8080)")
    parser.add_argument("-o", "--output", choices=("table", "json"), help="answer format")
    parser.add_argument("--timeout", help="seconds to wait for an async job (default: no limit)")
    parser.add_argument("--config", help="TOML config file (keys host, port, output, timeout)")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="ACTION key=value ...")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    ns = parser.parse_args(argv)
    _hear_ctrl_c()
    try:
        flags = {"host": ns.host, "port": ns.port, "output": ns.output, "timeout": ns.timeout}
        settings = resolve(flags, ns.config)
    except UsageError as exc:
        parser.exit(2, f"zstack-cli: {exc}\n")
    from zstackpy.cli.runner import Runner

    runner = Runner(settings)
    try:
        if ns.command:
            return runner.run(ns.command)
        if sys.stdin.isatty() and sys.stdout.isatty():
            from zstackpy.cli.shell import run_shell

            return run_shell(runner)
        return _run_lines(runner)
    except KeyboardInterrupt:
        # During a sync call: the node finishes it anyway; no traceback for a user's Ctrl-C.
        sys.stderr.write("\ninterrupted\n")
        return 130
    finally:
        runner.close()


def _hear_ctrl_c() -> None:
    """Ctrl-C reaches the CLI when it is the foreground of its terminal, even if a parent
    started it with SIGINT ignored or blocked (as shells and test runners do for their
    background children): the user pressing it there means this process. Elsewhere (a
    pipe, a background job) the inherited choice stands."""
    try:
        if not sys.stdin.isatty() or os.tcgetpgrp(sys.stdin.fileno()) != os.getpgrp():
            return
    except OSError:
        return
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def _run_lines(runner: Runner) -> int:
    """Commands from a pipe, one a line (``#`` starts a comment); the last failure's
    status, or 0."""
    from zstackpy.cli.runner import USAGE

    status = 0
    for line in sys.stdin:
        try:
            words = shlex.split(line, comments=True)
        except ValueError as exc:
            sys.stderr.write(f"zstack-cli: {exc}\n")
            status = USAGE
            continue
        if words:
            status = runner.run(words) or status
    return status


if __name__ == "__main__":
    sys.exit(main())
