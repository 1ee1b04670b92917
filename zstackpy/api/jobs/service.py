"""The apiJob service: runs async API calls in tasks it owns and records their outcome.

The front-ends call ``submit`` on their own node; the job row names that node, so when the
node leaves the ring (takeover hook) or is found gone at start, its unfinished jobs end
Failed with SYS.1012 instead of staying Processing forever. Polls read the row: any node
can answer them; the node running a job answers polls of it from memory until it ends (a
burst of creates is polled many times a second, and each read would cost the database),
and for a while after (the last poll, the one that sees it end, comes right after).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, func, select, update
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from zstackpy.api.events import JobCompletedEvent
from zstackpy.api.jobs.models import ApiJobVO, JobState
from zstackpy.api.messages import APICreateMessage, APIMessage, APIReply
from zstackpy.core.bus.message import Reply
from zstackpy.core.clock import utcnow_seconds
from zstackpy.core.db import ManagementNodeVO
from zstackpy.core.errors import ErrorInfo, SysErr, ZError
from zstackpy.core.flow import TraceCollector, collecting
from zstackpy.core.membership import RingChange
from zstackpy.core.service import Service
from zstackpy.services.identity.messages import ValidateSessionMsg, ValidateSessionReply

log = logging.getLogger(__name__)

API_JOB_SERVICE = "apiJob"
# Ended jobs this node answers from memory (the newest; older ones are read from the row).
# A burst's clients fetch each answer when its end is announced, seconds later under
# load: 10,000 creations end within half a minute. As text a VM creation's job is about
# 6 KB (answer and traces), so this many take about 100 MB at most.
RECENTLY_FINISHED_JOBS = 16384
# How often a drain looks again for submits still recording their job.
_SUBMIT_POLL_S = 0.01
# How long a job's outcome is retried while the database is unreachable.
OUTCOME_RETRY_S = 600.0


def reply_body(reply: Reply) -> dict[str, Any]:
    """The REST body of a successful reply: every field but success/error."""
    if isinstance(reply, APIReply):
        return reply.body()
    data: dict[str, Any] = reply.model_dump(
        mode="json", by_alias=True, exclude={"success", "error"}, exclude_none=True
    )
    return data


def reply_error(reply: Reply) -> ErrorInfo:
    return reply.error or ErrorInfo(code=SysErr.INTERNAL, description="the API failed")


@dataclass(frozen=True, slots=True)
class JobView:
    """A job as read from its row. The answer and the traces stay JSON text, as stored:
    a finished job is mostly fetched once, and its answer is sent as the text it is (a
    recently finished one is kept in memory, where text is a fraction of parsed JSON)."""

    uuid: str
    api_name: str
    state: JobState
    node_uuid: str
    account_uuid: str | None
    resource_uuid: str | None
    timeout_ms: int
    create_date: datetime
    finished_date: datetime | None
    body_json: str | None  # the answer's body (Done)
    error: ErrorInfo | None  # (Failed)
    # a list of FlowTrace.to_dict(), one per chain the job ran here; None until it ends
    traces_json: str | None = None

    @property
    def body(self) -> dict[str, Any] | None:
        return json.loads(self.body_json) if self.body_json is not None else None

    @property
    def traces(self) -> list[dict[str, Any]] | None:
        return json.loads(self.traces_json) if self.traces_json is not None else None

    @classmethod
    def of(cls, row: ApiJobVO) -> JobView:
        state = JobState(row.state)
        return cls(
            uuid=row.uuid,
            api_name=row.api_name,
            state=state,
            node_uuid=row.node_uuid,
            account_uuid=row.account_uuid,
            resource_uuid=row.resource_uuid,
            timeout_ms=row.timeout_ms,
            create_date=row.create_date,
            finished_date=row.finished_date,
            body_json=row.result if state is JobState.DONE and row.result else None,
            error=ErrorInfo.model_validate_json(row.result)
            if state is JobState.FAILED and row.result
            else None,
            traces_json=row.trace or None,
        )


def _node_gone(node_uuid: str, how: str) -> ErrorInfo:
    return ErrorInfo(
        code=SysErr.MANAGEMENT_NODE_UNAVAILABLE,
        description=f"management node {node_uuid} {how} while running this job",
        details={"node": node_uuid},
    )


class ApiJobService(Service):
    """Also a NodeTakeover: the builtin plugin registers it as one."""

    name = API_JOB_SERVICE

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._tasks: set[asyncio.Task[None]] = set()
        # Jobs this node runs, as recorded at submission: Processing until the task has
        # written the outcome to the row, after which polls read the row again.
        self._running: dict[str, JobView] = {}
        # Jobs this node ended, as written to their rows (finishedDate from this node's
        # clock, to the second, so the copy and the row agree).
        self._finished: OrderedDict[str, JobView] = OrderedDict()
        # The flow traces of those jobs while they run, for progress (``live_traces``).
        self._collectors: dict[str, TraceCollector] = {}
        self._accepting = False
        self._submitting = 0  # submits past the accepting check, still recording their job

    # ----- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        # Embedded restart: the previous process's row is gone, its jobs can never finish.
        async with self.ctx.db.session() as session:
            dead = (
                await session.execute(
                    select(ApiJobVO.node_uuid)
                    .where(
                        ApiJobVO.state == JobState.PROCESSING,
                        ApiJobVO.node_uuid.not_in(select(ManagementNodeVO.uuid)),
                    )
                    .distinct()
                )
            ).scalars()
            nodes = list(dead)
        for node in nodes:
            await self._fail_jobs_of(node, "died")
        self._accepting = True

    async def drain(self, timeout: float) -> int:  # noqa: ASYNC109 -- the drain's bound
        """Take no new job (SYS.1010) and let the running ones end, for at most
        ``timeout`` s; answers how many still run (``stop`` then fails them).

        A submit that passed the check before the drain began may still be writing its
        row: its job was accepted (the client got or will get 202) and gets the same
        chance to end, not a SYS.1012 for a task that started after the drain looked."""
        self._accepting = False
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        if self._tasks or self._submitting:
            log.info("draining: %d API jobs running", len(self._tasks) + self._submitting)
        while (left := deadline - loop.time()) > 0:
            if self._submitting:
                await asyncio.sleep(min(left, _SUBMIT_POLL_S))
            elif self._tasks:
                await asyncio.wait(set(self._tasks), timeout=left)
            else:
                break
        return len(self._tasks) + self._submitting

    async def stop(self) -> None:
        self._accepting = False
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        # The calls were cancelled: nobody will ever finish these rows.
        await self._fail_jobs_of(self.ctx.node_uuid, "stopped")

    async def take_over(self, change: RingChange) -> None:
        # Every node runs this; the update is idempotent (only Processing rows change).
        for node in sorted(change.left):
            await self._fail_jobs_of(node, "died")

    async def _fail_jobs_of(self, node_uuid: str, how: str) -> None:
        async with self.ctx.db.session() as session:
            rows = (
                await session.execute(
                    select(
                        ApiJobVO.uuid,
                        ApiJobVO.api_name,
                        ApiJobVO.account_uuid,
                        ApiJobVO.resource_uuid,
                    )
                    .where(ApiJobVO.node_uuid == node_uuid, ApiJobVO.state == JobState.PROCESSING)
                    .order_by(ApiJobVO.uuid)
                )
            ).all()
        if not rows:
            return
        error = _node_gone(node_uuid, how)
        failed: list[tuple[str, str, str | None, str | None]] = []
        async with self.ctx.db.session() as session, session.begin():
            for job_uuid, api_name, account_uuid, resource_uuid in rows:
                # One row at a time: every survivor runs this for the same departure, and
                # only the one whose update changed the row may announce the job's end.
                result = await session.execute(
                    update(ApiJobVO)
                    .where(ApiJobVO.uuid == job_uuid, ApiJobVO.state == JobState.PROCESSING)
                    .values(
                        state=JobState.FAILED,
                        result=error.model_dump_json(),
                        finished_date=func.current_timestamp(),
                    )
                )
                if result.rowcount:  # type: ignore[attr-defined]  # CursorResult at runtime
                    failed.append((job_uuid, api_name, account_uuid, resource_uuid))
        if failed:
            log.warning(
                "%d API jobs of management node %s failed: it %s", len(failed), node_uuid, how
            )
        for job_uuid, api_name, account_uuid, resource_uuid in failed:
            await self._announce(
                JobCompletedEvent(
                    job_uuid=job_uuid,
                    api_name=api_name,
                    state="Failed",
                    account_uuid=account_uuid,
                    resource_uuid=resource_uuid,
                    error=error,
                )
            )

    def _remember(self, job: JobView) -> None:
        """Move a job this node ended from the running ones to the recently finished."""
        self._finished[job.uuid] = job
        self._running.pop(job.uuid, None)
        while len(self._finished) > RECENTLY_FINISHED_JOBS:
            self._finished.popitem(last=False)

    async def _announce(self, event: JobCompletedEvent) -> None:
        """Publish a job's end; the outcome is already in its row, so a bus that cannot
        take the event costs the streams one line, not the job."""
        try:
            await self.ctx.bus.publish(event)
        except Exception:
            log.warning("could not publish the end of API job %s", event.job_uuid, exc_info=True)

    # ----- what the front-ends call ------------------------------------------------------

    async def submit(
        self, job_uuid: str, msg: APIMessage, timeout_s: float
    ) -> tuple[JobView, bool]:
        """Record the job and start the call; ``(job, False)`` when ``job_uuid`` exists
        already (a client's retry): nothing is sent again.

        Raises ZError SYS.1007 when the uuid belongs to a job of another API, SYS.1010 when
        the node is stopping."""
        if not self._accepting:
            raise ZError(SysErr.NOT_READY, "this management node is not taking API jobs")
        # Accepted from here: a drain that begins now waits for this job too.
        self._submitting += 1
        try:
            return await self._record_and_start(job_uuid, msg, timeout_s)
        finally:
            self._submitting -= 1

    async def _record_and_start(
        self, job_uuid: str, msg: APIMessage, timeout_s: float
    ) -> tuple[JobView, bool]:
        spec = msg.api
        api_name = spec.name if spec is not None else msg.wire_type()
        resource = msg.resource_uuid if isinstance(msg, APICreateMessage) else None
        row = ApiJobVO(
            uuid=job_uuid,
            api_name=api_name,
            state=JobState.PROCESSING,
            node_uuid=self.ctx.node_uuid,
            account_uuid=await self._account_of(msg),
            resource_uuid=resource,
            timeout_ms=round(timeout_s * 1000),
        )

        async def insert(session: AsyncSession) -> None:
            session.add(row)

        try:
            await self.ctx.db.write(insert)
        except IntegrityError:
            # The primary key decides between concurrent retries, on any node.
            existing = await self.get(job_uuid)
            if existing is None:
                raise
            if existing.api_name != api_name:
                raise ZError(
                    SysErr.INVALID_ARGUMENT,
                    f"job uuid {job_uuid} is already used by a {existing.api_name} job",
                    jobUuid=job_uuid,
                ) from None
            return existing, False
        job = JobView.of(row)  # create_date came back with the insert (eager defaults)
        self._running[job_uuid] = job
        task = asyncio.create_task(self._run(job, msg, timeout_s), name=f"api-job-{job_uuid}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        task.add_done_callback(lambda _: self._running.pop(job_uuid, None))
        return job, True

    async def _account_of(self, msg: APIMessage) -> str | None:
        """The account the job runs for, recorded on its row and its completion event.

        The portal checks the session again when the job sends the message, and only the
        portal's verdict admits it: this lookup decides who may see the job, never whether
        it runs. An invalid or missing session gives None (the job then fails at the
        portal, an event only the admin sees)."""
        spec = msg.api
        if not msg.session_uuid or (spec is not None and not spec.needs_session):
            return None
        reply = await self.ctx.bus.call(ValidateSessionMsg(session_uuid=msg.session_uuid))
        if isinstance(reply, ValidateSessionReply) and reply.success:
            return reply.auth.account_uuid
        return None

    def live_traces(self, job_uuid: str) -> list[dict[str, Any]] | None:
        """The traces so far of a job this node is running; None when it runs elsewhere or
        has ended (its row then has them)."""
        collector = self._collectors.get(job_uuid)
        return collector.snapshot() if collector is not None else None

    async def get(self, job_uuid: str) -> JobView | None:
        known = self._running.get(job_uuid) or self._finished.get(job_uuid)
        if known is not None:
            return known
        async with self.ctx.db.read_session() as session:
            row = await session.get(ApiJobVO, job_uuid)
            return JobView.of(row) if row is not None else None

    async def _write_outcome(
        self, job_uuid: str, finish: Callable[[AsyncSession], Awaitable[int]]
    ) -> int:
        """Write a job's end, again and again while the database is unreachable (up to
        OUTCOME_RETRY_S): a short outage must not leave the job Processing forever."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + OUTCOME_RETRY_S
        pause = 0.5
        while True:
            try:
                return await self.ctx.db.write(finish)
            except (DBAPIError, ConnectionError) as exc:
                if loop.time() + pause > deadline or not self._accepting:
                    raise
                log.warning("API job %s: its outcome waits for the database: %s", job_uuid, exc)
            await asyncio.sleep(pause)
            pause = min(pause * 2, 5.0)

    # ----- the job itself ------------------------------------------------------------

    async def _run(self, job: JobView, msg: APIMessage, timeout_s: float) -> None:
        msg.api_timeout_s = timeout_s
        # This task is the job's own: every chain the call runs on this node reports here.
        collector = collecting()
        self._collectors[job.uuid] = collector
        try:
            # This node's own portal, not the shared portal queue: the bus fails a call at
            # once when its destination node leaves the ring, but a message on the shared
            # queue has no known destination, so had another node taken it and died, the
            # job would wait out its timeout (30 min) Processing. The portal forwards to
            # the resource's owner by a call the bus does track.
            reply = await self.ctx.bus.call(msg, timeout=timeout_s, node=self.ctx.node_uuid)
        finally:
            self._collectors.pop(job.uuid, None)
        collected = collector.close()
        body: dict[str, Any] | None = None
        error: ErrorInfo | None = None
        if reply.success:
            body = reply_body(reply)
            state, result = JobState.DONE, json.dumps(body)
        else:
            error = reply_error(reply)
            state, result = JobState.FAILED, error.model_dump_json()
        finished = utcnow_seconds()
        trace = json.dumps(collected)
        # On the table, not the mapped class: no session holds the row to keep in step.
        table = cast(Table, ApiJobVO.__table__)  # declared as a FromClause; a Table at runtime
        ending = (
            update(table)
            .where(table.c.uuid == job.uuid, table.c.state == JobState.PROCESSING)
            .values(state=state, result=result, trace=trace, finished_date=finished)
        )

        async def finish(session: AsyncSession) -> int:
            changed = await session.execute(ending)
            return changed.rowcount  # type: ignore[attr-defined, no-any-return]  # CursorResult at runtime

        try:
            rowcount = await self._write_outcome(job.uuid, finish)
        except Exception:
            # The outcome is lost; the row stays Processing until this node leaves the ring.
            log.exception("could not record the outcome of API job %s", job.uuid)
            self._running.pop(job.uuid, None)
            return
        if not rowcount:
            self._running.pop(job.uuid, None)
            return  # already failed by a node that took this one for dead; it announced it
        self._remember(
            replace(
                job,
                state=state,
                finished_date=finished,
                body_json=result if state is JobState.DONE else None,
                error=error,
                traces_json=trace,
            )
        )
        await self._announce(
            JobCompletedEvent(
                job_uuid=job.uuid,
                api_name=job.api_name,
                state="Done" if state is JobState.DONE else "Failed",
                account_uuid=job.account_uuid,
                # Not only a create's: an action's event names the resource it was about.
                resource_uuid=job.resource_uuid or msg.routing_uuid(),
                result=body,
                error=error,
            )
        )
