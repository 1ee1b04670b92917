"""One agent's side of the protocol: auth, task ids, background runs, callbacks, reports.

An ``AgentRuntime`` is not a server: whoever owns the HTTP server (``AgentServer`` for a
real agent, the simulator for thousands of simulated ones) routes each request to
``dispatch``. It is kept small (slots, lazily made containers) because the simulator
holds one per simulated machine.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections.abc import Coroutine
from typing import Any, Protocol

import aiohttp
from aiohttp import web

from agents.runtime import delivery
from agents.runtime.errors import AgentCommandError, ReportError
from agents.runtime.protocol import (
    AUTHORIZATION,
    CALLBACK_URL,
    TASK_UUID,
    Command,
    Handler,
    bearer_matches,
    error_response,
    is_loopback_url,
    read_command,
)
from agents.runtime.taskcache import DEFAULT_MAX_AGE_S, DEFAULT_MAX_ENTRIES, TaskCache, TaskEntry

log = logging.getLogger(__name__)

# Commands whose body may carry the node's report URL (ZStack's connect always does).
_LEARNS_SEND_COMMAND_URL = frozenset({"/host/connect", "/host/ping"})
# The task entry of the async command running in this context (see drop_callback()).
_current_task: contextvars.ContextVar[TaskEntry | None] = contextvars.ContextVar(
    "agent_current_task", default=None
)


class TaskJournal(Protocol):
    """Where an agent that outlives its process keeps its task ids (the KVM agent's
    ``agents/kvm/journal.py``). Without one, a restarted agent knows no earlier task.

    ``recall`` answers a task id the in-memory cache does not know: the result it
    finished with, a "lost" result for one that was running when the process ended, or
    None when the id was never seen. ``started`` and ``finished`` record a run."""

    def recall(self, task_uuid: str) -> dict[str, Any] | None: ...

    async def started(self, task_uuid: str, path: str) -> None: ...

    async def finished(self, task_uuid: str, result: dict[str, Any]) -> None: ...


def drop_callback() -> None:
    """Called from inside an async command's handler: its result is cached as usual but
    not POSTed to the callback URLs waiting now (the simulator's stand-in for a result
    lost on the wire). A resend of the same task id that comes later still gets it.
    Outside an async command it does nothing."""
    entry = _current_task.get()
    if entry is not None:
        entry.waiting.clear()


class AgentRuntime:
    """The protocol engine of one agent; see ``agents/README.md`` for the wire contract.

    ``http`` is the session results and reports go out on: inject one to share it among
    many runtimes (the runtime then never closes it), or let ``start`` make one.
    ``loopback_only`` refuses callback and report URLs outside 127.0.0.0/8 (the simulator
    sets it: it must never reach out beyond this machine).
    """

    __slots__ = (
        "_cache",
        "_cache_age",
        "_cache_size",
        "_commands",
        "_http",
        "_journal",
        "_loopback_only",
        "_owns_http",
        "_stopping",
        "_tasks",
        "_token",
        "send_command_url",
    )

    callback_backoff: tuple[float, ...] = delivery.DEFAULT_BACKOFF_S

    def __init__(
        self,
        *,
        http: aiohttp.ClientSession | None = None,
        cache_size: int = DEFAULT_MAX_ENTRIES,
        cache_age: float = DEFAULT_MAX_AGE_S,
        loopback_only: bool = False,
        journal: TaskJournal | None = None,
    ) -> None:
        self._http = http
        self._journal = journal
        self._owns_http = False
        self._cache_size = cache_size
        self._cache_age = cache_age
        self._cache: TaskCache | None = None
        self._tasks: set[asyncio.Task[None]] | None = None
        self._commands: dict[str, Command] | None = None
        self._token: str | None = None
        self._loopback_only = loopback_only
        self._stopping = False
        self.send_command_url: str | None = None  # learned from /host/connect or /host/ping

    # ----- setup ------------------------------------------------------------------------

    def command(self, path: str, handler: Handler, *, sync: bool = False) -> None:
        """Register ``handler`` for ``path`` (``/host/ping``). Async commands answer by
        callback; ``sync`` ones in the HTTP response. Raises ValueError on a duplicate."""
        if not path.startswith("/"):
            raise ValueError(f"command path must start with '/': {path!r}")
        if self._commands is None:
            self._commands = {}
        if path in self._commands:
            raise ValueError(f"command {path} is already registered")
        self._commands[path] = Command(handler, sync)

    def lookup(self, path: str) -> Command | None:
        """The command for ``path``. Subclasses override it to serve a shared table."""
        return self._commands.get(path) if self._commands is not None else None

    def install_token(self, token: str) -> None:
        """Set the token the node must present; replaces any earlier one."""
        if not token:
            raise ValueError("the agent token must not be empty")
        self._token = token

    @property
    def has_token(self) -> bool:
        return self._token is not None

    @property
    def running(self) -> int:
        """Commands running in the background now."""
        return len(self._tasks) if self._tasks is not None else 0

    def forget_tasks(self) -> None:
        """Forget every cached task id, as a restarted process would (the simulator's
        crashes); a journal still recalls the finished ones."""
        self._cache = None

    async def start(self) -> None:
        """Make the callback session when none was injected. Idempotent."""
        self._stopping = False
        if self._http is None:
            connector = aiohttp.TCPConnector(limit=1000)
            self._http = aiohttp.ClientSession(connector=connector)
            self._owns_http = True

    async def stop(self) -> None:
        """Refuse new commands, cancel the running ones and wait for them to end."""
        self._stopping = True
        await self.cancel_running()
        if self._owns_http and self._http is not None:
            await self._http.close()
            self._http = None
            self._owns_http = False

    async def cancel_running(self) -> None:
        """Cancel every running command (no callbacks go out for them) and wait for them;
        the runtime keeps taking commands. The simulator calls it when a machine dies."""
        tasks = list(self._tasks or ())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # ----- requests ---------------------------------------------------------------------

    async def dispatch(self, request: web.Request, path: str) -> web.Response:
        """Serve one command request for ``path`` (see ``agents/README.md``).

        401 without the installed token, 503 while stopping, 404 for an unknown path, 400
        for a body that is not a JSON object or an async command without ``taskuuid`` and
        ``callbackurl``. A sync command answers 200 with its result; an async one answers
        200 ``{}`` at once and its result later by callback, running once per task id.
        """
        if not bearer_matches(request.headers.get(AUTHORIZATION), self._token):
            return error_response(401, "missing or wrong agent token")
        if self._stopping:
            return error_response(503, "the agent is stopping")
        command = self.lookup(path)
        if command is None:
            return error_response(404, f"no such command: {path}")
        try:
            cmd = await read_command(request)
        except ValueError as exc:
            return error_response(400, f"bad command body: {exc}")
        if path in _LEARNS_SEND_COMMAND_URL:
            url = cmd.get("sendCommandUrl")
            if isinstance(url, str) and url:
                self.send_command_url = url
        if command.sync:
            return web.json_response(await self._execute(path, command.handler, cmd))
        task_uuid = request.headers.get(TASK_UUID)
        callback_url = request.headers.get(CALLBACK_URL)
        if not task_uuid or not callback_url:
            return error_response(400, "async commands need the taskuuid and callbackurl headers")
        if self._loopback_only and not is_loopback_url(callback_url):
            return error_response(400, "callbackurl must be a loopback http URL here")
        self._accept(task_uuid, callback_url, path, command.handler, cmd)
        return web.json_response({})

    def _accept(
        self, task_uuid: str, callback_url: str, path: str, handler: Handler, cmd: dict[str, Any]
    ) -> None:
        if self._cache is None:
            self._cache = TaskCache(self._cache_size, self._cache_age)
        entry = self._cache.get(task_uuid)
        recalled = self._journal.recall(task_uuid) if entry is None and self._journal else None
        if recalled is not None:
            # Known from before a restart: answer what it ended with, never run it again.
            entry = self._cache.add(task_uuid, path, callback_url)
            entry.result, entry.waiting = recalled, []
            self._spawn(self._send(callback_url, task_uuid, recalled))
        elif entry is None:
            entry = self._cache.add(task_uuid, path, callback_url)
            self._spawn(self._run(task_uuid, entry, path, handler, cmd))
        elif entry.result is None:
            entry.waiting.append(callback_url)  # answered when the one run finishes
        else:
            self._spawn(self._send(callback_url, task_uuid, entry.result))

    async def _run(
        self, task_uuid: str, entry: TaskEntry, path: str, handler: Handler, cmd: dict[str, Any]
    ) -> None:
        _current_task.set(entry)
        try:
            if self._journal is not None:
                await self._journal.started(task_uuid, path)
            result = await self._execute(path, handler, cmd)
            if self._journal is not None:
                await self._journal.finished(task_uuid, result)
        except asyncio.CancelledError:
            if self._cache is not None:
                self._cache.discard(task_uuid)  # a resend must run it, not wait forever
            raise
        entry.result = result
        waiting, entry.waiting = entry.waiting, []
        for url in waiting:
            await self._send(url, task_uuid, result)

    async def _execute(self, path: str, handler: Handler, cmd: dict[str, Any]) -> dict[str, Any]:
        try:
            fields = await handler(cmd)
        except AgentCommandError as exc:
            if exc.details:
                return {"success": False, "error": exc.error, "details": exc.details}
            return {"success": False, "error": exc.error}
        except Exception as exc:
            log.exception("agent command %s failed", path)
            return {"success": False, "error": f"{type(exc).__name__}: {exc}"}
        return {"success": True, "error": None, **fields}

    async def _send(self, url: str, task_uuid: str, result: dict[str, Any]) -> None:
        if self._http is None:
            log.warning("no HTTP session: the result of task %s is dropped", task_uuid)
            return
        await delivery.post_result(
            self._http, url, task_uuid, result, backoff=self.callback_backoff
        )

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        if self._tasks is None:
            self._tasks = set()
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)  # owned here: stop() cancels and awaits it
        task.add_done_callback(self._tasks.discard)

    # ----- reports ----------------------------------------------------------------------

    async def report(self, commandpath: str, body: dict[str, Any]) -> None:
        """POST a report (``/kvm/reportvmstate``...) to the node's ``sendCommandUrl``.

        Raises ReportError when none was learned yet or the node does not take it.
        """
        url = self.send_command_url
        if url is None:
            raise ReportError("no sendCommandUrl yet: the node has not connected this agent")
        if self._token is None or self._http is None:
            raise ReportError("the agent has no token or no HTTP session")
        if self._loopback_only and not is_loopback_url(url):
            raise ReportError(f"sendCommandUrl {url} is not a loopback http URL")
        await delivery.post_report(self._http, url, self._token, commandpath, body)
