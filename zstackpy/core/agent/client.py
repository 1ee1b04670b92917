"""The node's side of the agent protocol: commands out, results back by callback URL.

A command is a JSON POST to the agent with headers ``taskuuid`` and ``callbackurl``; the
agent answers at once and later POSTs the result to ``callbackurl`` (this node's
``/zstack/asyncrest/callback``) with the same ``taskuuid``. ``call`` parks a future under
the task id until ``deliver`` resolves it or the timeout ends it. Calls to one agent run
in that agent's work queue, so at most ``max_in_flight`` are outstanding per agent and
the rest wait in order. Agents also report events on their own
(``/zstack/asyncrest/sendcommand``); handlers registered with ``on_report`` get them.

Where an agent's URL points and how an agent is installed is the ``AgentDriver``'s
business (``driver.py``): real machines at their management IP, or, in simulated mode,
the simulator, where an agent's address is only a label it maps to a simulated machine.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol

import aiohttp

from zstackpy.core.agent.driver import KVM_AGENT, DeployOutcome, DeployRequest
from zstackpy.core.agent.endpoint import AgentEndpoint, AgentErr
from zstackpy.core.errors import SysErr, ZError
from zstackpy.core.ids import new_uuid
from zstackpy.core.workqueue import QueueKey, WorkQueues

log = logging.getLogger(__name__)

CALLBACK_PATH = "/zstack/asyncrest/callback"
SEND_COMMAND_PATH = "/zstack/asyncrest/sendcommand"
DEFAULT_TIMEOUT_S = 300.0
DEFAULT_MAX_IN_FLIGHT = 10  # ZStack's ``kvm host.syncLevel``
# A command whose result has not come back after this long is sent again under the same
# task id: the agent runs a task id once, so the resend only fetches a result whose
# callback was lost (or reaches an agent that restarted and lost the command before it ran).
DEFAULT_RESEND_AFTER_S = 5.0
# A resend that cannot reach the agent is tried again after this long, until the timeout.
_RESEND_BACKOFF_MAX_S = 20.0


@dataclass(frozen=True, slots=True)
class AgentReport:
    """A report an agent sent on its own: ``commandpath`` picks the handler. ``token`` is
    what the agent proved itself with; the handler checks it against the host's."""

    commandpath: str
    body: dict[str, Any]
    token: str | None


ReportHandler = Callable[[AgentReport], Awaitable[None]]
# (command path, seconds, error code or None): told after every command, for metrics.
AgentCallObserver = Callable[[str, float, str | None], None]


class AgentDriverLike(Protocol):
    """What the client needs of an ``AgentDriver`` (see ``driver.py``)."""

    def agent_url(self, endpoint: AgentEndpoint, path: str) -> str: ...

    def deploys_on_reconnect(self) -> bool: ...

    async def deploy(self, request: DeployRequest) -> DeployOutcome: ...


class AgentClient:
    """Created by the node; ``start`` after the HTTP server bound (the callback URL needs
    its port), ``stop`` fails every call still waiting."""

    def __init__(
        self,
        queues: WorkQueues,
        *,
        connection_limit: int = 1000,
        resend_after: float = DEFAULT_RESEND_AFTER_S,
    ) -> None:
        self._queues = queues
        self._connection_limit = connection_limit
        self.resend_after = resend_after
        self.resends = 0  # commands sent again for a result that was late (metrics, tests)
        self._pending: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._report_handlers: dict[str, ReportHandler] = {}
        self._http: aiohttp.ClientSession | None = None
        self.node_base_url = ""  # http://<advertised host>:<port>, set by the node
        self.driver: AgentDriverLike | None = None  # set by start
        self.observer: AgentCallObserver | None = None  # set by the node (metrics)
        # Set by the node: a reason to send no command now (the database has been
        # unreachable too long to record what a command would do), or None.
        self.hold: Callable[[], str | None] | None = None

    # ----- lifecycle --------------------------------------------------------------------

    async def start(self, node_base_url: str, driver: AgentDriverLike) -> None:
        self.node_base_url = node_base_url.rstrip("/")
        self.driver = driver
        connector = aiohttp.TCPConnector(limit=self._connection_limit)
        self._http = aiohttp.ClientSession(
            connector=connector, json_serialize=json.dumps, raise_for_status=False
        )

    async def stop(self) -> None:
        for task_uuid, future in list(self._pending.items()):
            if not future.done():
                future.set_exception(
                    ZError(SysErr.CANCELED, "the node is stopping", task_uuid=task_uuid)
                )
        self._pending.clear()
        if self._http is not None:
            await self._http.close()
            self._http = None

    @property
    def callback_url(self) -> str:
        return self.node_base_url + CALLBACK_PATH

    @property
    def send_command_url(self) -> str:
        return self.node_base_url + SEND_COMMAND_PATH

    def url_for(self, endpoint: AgentEndpoint, path: str) -> str:
        return self._driver().agent_url(endpoint, path)

    def _driver(self) -> AgentDriverLike:
        if self.driver is None:
            raise ZError(SysErr.NOT_READY, "the agent client is not started")
        return self.driver

    @property
    def deploys_on_reconnect(self) -> bool:
        return self.driver is not None and self.driver.deploys_on_reconnect()

    def in_flight(self, owner_uuid: str) -> int:
        """Calls to this agent outstanding now (waiting ones not counted)."""
        return self._queues.running(QueueKey("agent", owner_uuid))

    # ----- calls ------------------------------------------------------------------------

    async def call(
        self,
        endpoint: AgentEndpoint,
        path: str,
        cmd: Mapping[str, Any],
        *,
        timeout: float = DEFAULT_TIMEOUT_S,  # noqa: ASYNC109 -- per-call timeouts are the contract
        max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
    ) -> dict[str, Any]:
        """Send an async command; return the agent's result (``success`` true).

        Raises ZError AGENT.1001 unreachable, 1002 timeout (the agent took the command
        but no result came within ``timeout`` s, queueing included), 1003 the command
        failed (``details["error"]`` has the agent's text), 1004 refused, 1005 bad answer.
        """
        key = QueueKey("agent", endpoint.owner_uuid)
        with self._observed(path):
            self._check_hold(path)
            try:
                async with asyncio.timeout(timeout):
                    return await self._queues.run(
                        key, self._call_now, endpoint, path, cmd, level=max_in_flight
                    )
            except TimeoutError:
                raise ZError(
                    AgentErr.TIMEOUT,
                    f"no result from the agent at {endpoint.address}:{endpoint.port} for "
                    f"{path} within {timeout:g} s",
                    path=path,
                    owner_uuid=endpoint.owner_uuid,
                    address=endpoint.address,
                    timeout_s=timeout,
                ) from None

    def _held(self) -> bool:
        return self.hold is not None and self.hold() is not None

    def _check_hold(self, path: str) -> None:
        reason = self.hold() if self.hold is not None else None
        if reason is not None:
            raise ZError(SysErr.NOT_READY, f"agent commands are held: {reason}", path=path)

    @contextmanager
    def _observed(self, path: str) -> Iterator[None]:
        """Tell the observer (metrics) how a command went: its time and error code."""
        started = time.perf_counter()
        code: str | None = SysErr.INTERNAL  # an unexpected error, unless told otherwise
        try:
            yield
            code = None
        except ZError as exc:
            code = exc.code
            raise
        except asyncio.CancelledError:
            code = SysErr.CANCELED
            raise
        finally:
            if self.observer is not None:
                self.observer(path, time.perf_counter() - started, code)

    async def _call_now(
        self, endpoint: AgentEndpoint, path: str, cmd: Mapping[str, Any]
    ) -> dict[str, Any]:
        # Again once the agent's slot is ours: the hold may have begun while it queued.
        self._check_hold(path)
        task_uuid = new_uuid()
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[task_uuid] = future
        try:
            headers = {"taskuuid": task_uuid, "callbackurl": self.callback_url}
            await self._post(endpoint, path, cmd, headers)
            result = await self._await_result(future, endpoint, path, cmd, headers)
        finally:
            self._pending.pop(task_uuid, None)
        return _checked(result, endpoint, path)

    async def _await_result(
        self,
        future: asyncio.Future[dict[str, Any]],
        endpoint: AgentEndpoint,
        path: str,
        cmd: Mapping[str, Any],
        headers: dict[str, str],
    ) -> dict[str, Any]:
        """The callback's result; while it is late, the command is sent again with the
        same task id (the caller's timeout ends the wait). The agent answers a known task
        id from its cache or journal, or adds our callback to the run in progress, so a
        lost callback costs one resend period instead of the whole timeout and a
        command never runs twice. Each resend waits twice as long as the one before (up
        to the backoff's cap): a node so busy that callbacks queue up behind its work
        must not add a resend per command every period on top."""
        wait = self.resend_after
        while True:
            done, _ = await asyncio.wait({future}, timeout=wait)
            if done:
                return future.result()
            if self._held():
                # Nothing goes out while held; the command is known there, and its
                # callback may still come. The caller's timeout bounds the wait.
                continue
            self.resends += 1
            try:
                await self._post(endpoint, path, cmd, headers)
                wait = min(wait * 2, max(_RESEND_BACKOFF_MAX_S, self.resend_after))
            except ZError as exc:
                # Unreachable now (restarting, or down): the command may still finish
                # there; keep waiting and try again later, until the caller's timeout.
                log.info("resending %s to %s failed: %s", path, endpoint.address, exc.description)
                wait = min(wait * 2, _RESEND_BACKOFF_MAX_S)

    async def call_sync(
        self,
        endpoint: AgentEndpoint,
        path: str,
        cmd: Mapping[str, Any],
        *,
        timeout: float = 30.0,  # noqa: ASYNC109 -- per-call timeouts are the contract
    ) -> dict[str, Any]:
        """A plain request/response command (``/host/connect``, ``/host/echo``)."""
        with self._observed(path):
            self._check_hold(path)
            try:
                async with asyncio.timeout(timeout):
                    body = await self._post(endpoint, path, cmd, {})
            except TimeoutError:
                raise ZError(
                    AgentErr.TIMEOUT,
                    f"the agent at {endpoint.address}:{endpoint.port} did not answer {path} "
                    f"within {timeout:g} s",
                    path=path,
                    owner_uuid=endpoint.owner_uuid,
                    timeout_s=timeout,
                ) from None
            return _checked(body, endpoint, path)

    async def _post(
        self,
        endpoint: AgentEndpoint,
        path: str,
        cmd: Mapping[str, Any],
        headers: dict[str, str],
    ) -> dict[str, Any]:
        url = self.url_for(endpoint, path)
        headers = {**headers, "Authorization": f"Bearer {endpoint.token}"}
        where = f"{endpoint.address}:{endpoint.port}"
        try:
            async with self._session().post(url, json=dict(cmd), headers=headers) as resp:
                text = await resp.text()
                status = resp.status
        except aiohttp.ClientError as exc:
            raise ZError(
                AgentErr.UNREACHABLE,
                f"cannot reach the agent at {where}: {type(exc).__name__}",
                path=path,
                owner_uuid=endpoint.owner_uuid,
                address=endpoint.address,
                port=endpoint.port,
            ) from exc
        if 400 <= status < 500:
            raise ZError(
                AgentErr.REFUSED,
                f"the agent at {where} refused {path} (HTTP {status})",
                path=path,
                owner_uuid=endpoint.owner_uuid,
                status=status,
                answer=text[:500],
            )
        try:
            body = json.loads(text) if text.strip() else {}
        except ValueError:
            body = None
        if status >= 500 or not isinstance(body, dict):
            raise ZError(
                AgentErr.BAD_RESPONSE,
                f"the agent at {where} gave an answer outside the protocol to {path}",
                path=path,
                owner_uuid=endpoint.owner_uuid,
                status=status,
                answer=text[:500],
            )
        return body

    def _session(self) -> aiohttp.ClientSession:
        if self._http is None:
            raise ZError(SysErr.NOT_READY, "the agent client is not started")
        return self._http

    # ----- deployment -------------------------------------------------------------------

    async def deploy(
        self,
        endpoint: AgentEndpoint,
        *,
        username: str,
        password: str,
        ssh_port: int,
        kind: str = KVM_AGENT,
        timeout: float = 900.0,  # noqa: ASYNC109 -- deployments take minutes
    ) -> DeployOutcome:
        """Install and start the ``kind`` agent on the machine, with ``endpoint.token`` as
        its token, through the node's driver (Ansible for real machines, the simulator's
        deploy call in simulated mode). Raises ZError AGENT.1007 with the cause."""
        request = DeployRequest(
            endpoint=endpoint,
            kind=kind,
            username=username,
            password=password,
            ssh_port=ssh_port,
            send_command_url=self.send_command_url,
        )
        try:
            async with asyncio.timeout(timeout):
                return await self._driver().deploy(request)
        except TimeoutError:
            raise ZError(
                AgentErr.DEPLOY_FAILED,
                f"deploying the agent to {endpoint.address} took more than {timeout:g} s",
                address=endpoint.address,
                timeout_s=timeout,
            ) from None

    # ----- what the HTTP endpoints call -------------------------------------------------

    def deliver(self, task_uuid: str, result: dict[str, Any]) -> bool:
        """A callback arrived; False when no call waits for it (unknown or timed out)."""
        future = self._pending.get(task_uuid)
        if future is None or future.done():
            return False
        future.set_result(result)
        return True

    def on_report(self, commandpath: str, handler: ReportHandler) -> None:
        if commandpath in self._report_handlers:
            raise ZError(SysErr.INTERNAL, f"agent report {commandpath} already has a handler")
        self._report_handlers[commandpath] = handler

    def handles_report(self, commandpath: str) -> bool:
        return commandpath in self._report_handlers

    async def dispatch_report(self, report: AgentReport) -> None:
        handler = self._report_handlers.get(report.commandpath)
        if handler is None:
            raise ZError(
                SysErr.RESOURCE_NOT_FOUND,
                f"no handler for agent report {report.commandpath}",
                commandpath=report.commandpath,
            )
        await handler(report)


def _checked(result: dict[str, Any], endpoint: AgentEndpoint, path: str) -> dict[str, Any]:
    if result.get("success") is True:
        return result
    error = result.get("error") or "the agent reported failure without a reason"
    details: dict[str, Any] = {}
    agent_details = result.get("details")
    if isinstance(agent_details, dict) and agent_details:
        details["agentDetails"] = agent_details  # e.g. libvirt's error code and domain
    raise ZError(
        AgentErr.COMMAND_FAILED,
        f"{path} failed on the agent at {endpoint.address}: {error}",
        path=path,
        owner_uuid=endpoint.owner_uuid,
        error=error,
        **details,
    )
