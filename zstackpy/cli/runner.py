"""One command, from its words to its exit status: the same path for a one-shot
``zstack-cli CreateZone name=z1`` and a line typed in the shell.

Exit statuses: 0 ok, 1 the API (or the node's reachability) failed, 2 bad usage,
130 Ctrl-C while an async job was running (the job goes on).
"""

from __future__ import annotations

import sys
from dataclasses import replace

from zstackpy.cli import args as cli_args
from zstackpy.cli import jobs, render
from zstackpy.cli.catalogue import QUERY_KEYS, Action, Catalogue, CatalogueError, load
from zstackpy.cli.client import Answer, Client, UnreachableError
from zstackpy.cli.session import Login, SessionStore
from zstackpy.cli.settings import (
    Settings,
    UsageError,
    cache_dir,
    config_dir,
    parse_output,
    parse_timeout,
)

OK, API_ERROR, USAGE, INTERRUPTED = 0, 1, 2, 130
NOT_LOGGED_IN = ("ID.1001", "ID.1005")  # expired session, none sent


class Runner:
    def __init__(self, settings: Settings, prog: str = "zstack-cli") -> None:
        self.settings, self.prog = settings, prog
        self.store = SessionStore(config_dir() / "session.json", settings.base_url)
        self.login = self.store.get()
        self.client = Client(settings.host, settings.port, self.login.uuid if self.login else None)
        self._catalogue: Catalogue | None = None

    @property
    def catalogue(self) -> Catalogue:
        """Loaded on first use. Raises UnreachableError, CatalogueError."""
        if self._catalogue is None:
            self._catalogue = load(self.client, cache_dir())
        return self._catalogue

    def run(self, words: list[str]) -> int:
        """Run one command; messages go to stdout/stderr; answers the exit status."""
        try:
            words, settings = command_options(words, self.settings)
            if not words:
                raise UsageError("no action given; try: help")
            if words[0] == "help":
                return self._help(words[1:])
            return self._call(words[0], words[1:], settings)
        except UsageError as exc:
            sys.stderr.write(f"{self.prog}: {exc}\n")
            return USAGE
        except UnreachableError as exc:
            sys.stderr.write(
                f"Error: cannot reach the management node at {self.settings.base_url}: {exc}\n"
                f"  is it running? Choose another with -H HOST -p PORT.\n"
            )
            return API_ERROR
        except CatalogueError as exc:
            sys.stderr.write(f"Error: {exc}\n")
            return API_ERROR
        except jobs.StillRunningError as exc:
            hint = jobs.poll_hint(self.prog, exc.job_uuid, self.settings.base_url)
            if exc.interrupted:
                sys.stderr.write(f"\ninterrupted: {hint}\n")
                return INTERRUPTED
            sys.stderr.write(f"Error: timed out waiting; {hint}\n")
            return API_ERROR

    def action(self, name: str) -> Action:
        action = self.catalogue.get(name)
        if action is None:
            import difflib

            close = difflib.get_close_matches(name, self.catalogue.names(), n=3)
            hint = f"; did you mean {' or '.join(close)}?" if close else "; try: help"
            raise UsageError(f"unknown action {name!r}{hint}")
        return action

    def _call(self, name: str, words: list[str], settings: Settings) -> int:
        action = self.action(name)
        implicit = {"sessionUuid": self.login.uuid} if self.login else {}
        request = cli_args.build(action, words, implicit)
        answer = self.client.request(
            request.method, request.path, query=request.query, body=request.body
        )
        if answer.status == 202 and isinstance(answer.body, dict) and "location" in answer.body:
            # On stderr, and only on a terminal: stdout stays the answer alone (-o json).
            answer = jobs.wait(
                self.client,
                answer.body["location"],
                action.name,
                settings.timeout,
                jobs.show_progress(),
            )
        elif answer.status == 202:
            # GetApiJob of a job that has not ended: say so instead of printing {}.
            answer = Answer(200, {"state": "Processing"})
        error = answer.error
        if error is not None:
            render.print_error(error)
            if error.get("code") in NOT_LOGGED_IN and not action.name.startswith("LogIn"):
                sys.stderr.write("  log in first: LogInByAccount accountName=NAME password=PW\n")
                if self.login is not None:  # expired or logged out elsewhere: forget it
                    self.login = None
                    self.store.save(None)
                    self.client.session_uuid = None
            return API_ERROR
        self._remember_session(action, words, answer)
        if settings.output == "json":
            render.print_json(answer.body)
        else:
            render.print_table(answer.body, _fields(words) if action.is_query else None)
        return OK

    def _remember_session(self, action: Action, words: list[str], answer: Answer) -> None:
        if action.name.startswith("LogIn"):
            inventory = answer.body.get("inventory", {}) if isinstance(answer.body, dict) else {}
            given = dict(w.split("=", 1) for w in words if "=" in w)
            account = given.get("accountName") or given.get("userName") or "?"
            if inventory.get("uuid"):
                self.login = Login(str(inventory["uuid"]), account)
        elif action.name == "LogOut":
            self.login = None
        else:
            return
        self.store.save(self.login)
        self.client.session_uuid = self.login.uuid if self.login else None

    def _help(self, words: list[str]) -> int:
        if not words:
            sys.stdout.write("\n".join(self.catalogue.names()) + "\n")
            return OK
        action = self.action(words[0])
        sys.stdout.write(describe(action))
        return OK

    def close(self) -> None:
        self.client.close()


def describe(action: Action) -> str:
    kind = "query" if action.is_query else ("async" if action.is_async else "sync")
    lines = [f"{action.name} ({action.method} {action.path}, {kind})", f"  {action.summary}"]
    for param in sorted(action.params.values(), key=lambda p: (not p.required, p.name)):
        kind = f"{param.item_kind},..." if param.kind == "array" else param.kind
        choices = f" ({'/'.join(param.choices)})" if param.choices else ""
        need = "required" if param.required else "optional"
        lines.append(f"  {param.name}={kind}{choices}  {need}")
    if action.is_query:
        lines.append(
            "  conditions: field=value, != > < >= <= ?= (in) !?= ~= (like) !~=, =null, !=null"
        )
        lines.append("  also: " + " ".join(f"{k}=" for k in QUERY_KEYS))
    return "\n".join(lines) + "\n"


def _fields(words: list[str]) -> list[str] | None:
    for word in words:
        if word.startswith("fields="):
            return [f for f in word[len("fields=") :].split(",") if f]
    return None


def command_options(words: list[str], settings: Settings) -> tuple[list[str], Settings]:
    """Take ``-o json`` / ``--output=json`` and ``--timeout N`` out of a command's words,
    wherever they are (``QueryZone -o json`` is how people type it)."""
    rest: list[str] = []
    i = 0
    while i < len(words):
        word = words[i]
        name, eq, value = word.partition("=")
        if name in ("-o", "--output", "--timeout") or (word.startswith("-o") and len(word) > 2):
            if name.startswith("-o") and not name.startswith("--") and len(name) > 2:
                name, value, eq = "-o", word[2:], "="
            if not eq:
                if i + 1 >= len(words):
                    raise UsageError(f"{name} needs a value")
                i += 1
                value = words[i]
            if name == "--timeout":
                settings = replace(settings, timeout=parse_timeout(value))
            else:
                settings = replace(settings, output=parse_output(value))
        else:
            rest.append(word)
        i += 1
    return rest, settings
