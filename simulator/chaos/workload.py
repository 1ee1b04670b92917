"""The load a fault meets: VM creations and lifecycle operations over the REST API.

Every request carries its own ``X-Job-UUID``, so a request whose answer was lost (the node
died while answering) can still be traced: if any node knows the job, it was accepted and
must end. Each operation is recorded as an ``Op``; the invariants (``invariants.py``)
judge the records.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import aiohttp

# An HTTP request that gets no answer in this long hangs: a "clean errors" violation.
REQUEST_TIMEOUT_S = 30.0
POLL_S = 0.25
NO_NODE_PAUSE_S = 1.0


class Outcome(StrEnum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"  # ended with a structured error (code and description)
    REJECTED = "rejected"  # refused before a job existed, with a structured error
    UNREACHABLE = "unreachable"  # no node took the connection: never accepted
    LOST = "lost"  # accepted, and no end seen within the bound
    UNCLEAR = "unclear"  # an answer without an error code
    HUNG = "hung"  # a request that got no answer at all in REQUEST_TIMEOUT_S


@dataclass
class Op:
    kind: str  # create, stop, start, reboot, destroy
    vm_uuid: str
    job_uuid: str = field(default_factory=lambda: uuid.uuid4().hex)
    accepted: bool = False
    node_url: str = ""  # the node that accepted it
    outcome: Outcome | None = None
    error_code: str | None = None
    started: float = field(default_factory=time.monotonic)
    ended: float | None = None


@dataclass
class Answer:
    status: int
    body: Any
    node_url: str = ""  # the node that answered

    @property
    def error_code(self) -> str | None:
        if isinstance(self.body, dict) and isinstance(self.body.get("error"), dict):
            code = self.body["error"].get("code")
            return str(code) if code else None
        return None


class NoNodeError(Exception):
    """No node answered the request (every one refused the connection or is gone)."""


@dataclass
class Rest:
    """REST calls to whichever node answers: ``urls()`` lists the live nodes' URLs."""

    http: aiohttp.ClientSession
    urls: Callable[[], Sequence[str]]
    password: str
    session: str | None = None
    hung: int = 0

    async def login(self) -> None:
        digest = hashlib.sha512(self.password.encode()).hexdigest()
        body = {"logInByAccount": {"accountName": "admin", "password": digest}}
        answer = await self.call("PUT", "/accounts/login", body)
        if answer.status != 200:
            raise RuntimeError(f"login failed: {answer.status} {answer.body}")
        self.session = str(answer.body["inventory"]["uuid"])

    async def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        job_uuid: str | None = None,
        url: str | None = None,
    ) -> Answer:
        """One request; on a refused connection the next live node is tried. Raises NoNodeError
        when none answers, TimeoutError (counted in ``hung``) when one took it and went
        silent."""
        headers = {"Authorization": f"OAuth {self.session}"} if self.session else {}
        if job_uuid is not None:
            headers["X-Job-UUID"] = job_uuid
        candidates = [url] if url else list(self.urls())
        random.shuffle(candidates)
        for base in candidates:
            try:
                async with asyncio.timeout(REQUEST_TIMEOUT_S):
                    async with self.http.request(
                        method, f"{base}/zstack/v1{path}", json=body, headers=headers
                    ) as resp:
                        raw = await resp.text()
            except TimeoutError:
                self.hung += 1
                raise
            except aiohttp.ClientConnectionError:
                continue  # that node is gone: another one may take it
            try:
                return Answer(resp.status, json.loads(raw) if raw else None, base)
            except ValueError:
                return Answer(resp.status, raw, base)
        raise NoNodeError(path)


@dataclass
class Workload:
    """``ops`` operations by ``concurrency`` clients; VMs are created until ``vm_pool``
    exist, then lifecycle operations pick among them by their last known state."""

    rest: Rest
    dc: dict[str, Any]
    ops: int
    concurrency: int
    vm_pool: int
    rng: random.Random = field(default_factory=lambda: random.Random(11))  # noqa: S311
    records: list[Op] = field(default_factory=list)
    # VM uuid -> its last known state ("Running", "Stopped"); busy ones are out of it
    vms: dict[str, str] = field(default_factory=dict)
    busy: set[str] = field(default_factory=set)
    # How long an operation's client follows its job before leaving it to ``settle``
    follow_bound_s: float = 120.0
    _issued: int = 0
    accepted_event: asyncio.Event = field(default_factory=asyncio.Event)

    def accepted(self) -> int:
        return sum(1 for r in self.records if r.accepted)

    async def run(self) -> None:
        async def client() -> None:
            while self._issued < self.ops:
                self._issued += 1
                await self._one(self._next())

        await asyncio.gather(*(client() for _ in range(self.concurrency)))

    def _next(self) -> Op:
        idle = [u for u in self.vms if u not in self.busy]
        if len(self.vms) + len(self.busy) < self.vm_pool or not idle:
            return Op("create", uuid.uuid4().hex)
        vm = self.rng.choice(idle)
        state = self.vms[vm]
        choices = {
            "Running": ["stop", "stop", "reboot", "destroy"],
            "Stopped": ["start", "start", "destroy"],
        }.get(state, ["destroy"])
        return Op(self.rng.choice(choices), vm)

    async def _one(self, op: Op) -> None:
        self.records.append(op)
        self.busy.add(op.vm_uuid)
        try:
            await self._issue(op)
        finally:
            self.busy.discard(op.vm_uuid)
            op.ended = time.monotonic()
            if op.accepted:
                self.accepted_event.set()

    async def _issue(self, op: Op) -> None:
        method, path, body = _request(op, self.dc)
        try:
            answer = await self.rest.call(method, path, body, job_uuid=op.job_uuid)
        except TimeoutError:
            op.outcome = Outcome.HUNG
            return
        except NoNodeError:
            # Maybe taken before the node died: the job's row says (``settle``). A client
            # that finds no node waits a little, as a user would, rather than burn its
            # operations at once.
            op.outcome = Outcome.UNREACHABLE
            await asyncio.sleep(NO_NODE_PAUSE_S)
            return
        if answer.status == 202:
            op.accepted, op.node_url = True, answer.node_url
            await self.follow(op, self.follow_bound_s)
        else:
            self._ended(op, answer, accepted=False)

    async def follow(self, op: Op, bound_s: float) -> None:
        """Poll the job on any live node until it ends; it stays without an outcome (to be
        settled later) if it does not within ``bound_s``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + bound_s
        while loop.time() < deadline:
            try:
                answer = await self.rest.call("GET", f"/api-jobs/{op.job_uuid}")
            except (TimeoutError, NoNodeError):
                await asyncio.sleep(POLL_S)
                continue
            if answer.status == 202:
                await asyncio.sleep(POLL_S)
                continue
            self._ended(op, answer, accepted=True)
            return

    def _ended(self, op: Op, answer: Answer, *, accepted: bool) -> None:
        if answer.status < 300:
            op.outcome = Outcome.SUCCEEDED
            self._applied(op)
            return
        op.error_code = answer.error_code
        if op.error_code is None:
            op.outcome = Outcome.UNCLEAR
        else:
            op.outcome = Outcome.FAILED if accepted else Outcome.REJECTED
        if op.kind != "create":
            self.vms.pop(op.vm_uuid, None)  # its state is unknown now: leave it be

    def _applied(self, op: Op) -> None:
        after = {"create": "Running", "start": "Running", "reboot": "Running", "stop": "Stopped"}
        if op.kind == "destroy":
            self.vms.pop(op.vm_uuid, None)
        else:
            self.vms[op.vm_uuid] = after[op.kind]

    async def settle(self, bound_s: float) -> None:
        """After the fault healed: follow every accepted job left open, and ask about
        every request that never got an answer (its job may exist)."""
        open_ops = [r for r in self.records if r.outcome is None and r.accepted]
        unknown = [r for r in self.records if r.outcome is Outcome.UNREACHABLE]
        for op in unknown:
            try:
                answer = await self.rest.call("GET", f"/api-jobs/{op.job_uuid}")
            except (TimeoutError, NoNodeError):
                continue
            if answer.status != 404:
                op.accepted, op.outcome = True, None
                open_ops.append(op)
        await asyncio.gather(*(self.follow(op, bound_s) for op in open_ops))
        for op in open_ops:
            if op.outcome is None:
                op.outcome = Outcome.LOST


def _request(op: Op, dc: dict[str, Any]) -> tuple[str, str, Any]:
    if op.kind == "create":
        params = {
            "name": f"chaos-{op.vm_uuid[:8]}",
            "imageUuid": dc["image"]["uuid"],
            "instanceOfferingUuid": dc["offering"]["uuid"],
            "l3NetworkUuids": [dc["l3"]["uuid"]],
            "resourceUuid": op.vm_uuid,
        }
        return "POST", "/vm-instances", {"params": params}
    if op.kind == "destroy":
        return "DELETE", f"/vm-instances/{op.vm_uuid}", None
    action = {"stop": "stopVmInstance", "start": "startVmInstance", "reboot": "rebootVmInstance"}
    return "PUT", f"/vm-instances/{op.vm_uuid}/actions", {action[op.kind]: {}}
