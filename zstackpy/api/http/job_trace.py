"""``GET /zstack/v1/api-jobs/{uuid}/trace``: which flows an async job ran and how each ended.

The traces are kept on the job's row when it ends (``ApiJobService``), so any node answers.
Unlike the job poll, whose unguessable UUID is the capability ZStack clients rely on, a
trace shows internals (flow names, rollback errors): it needs a session, and an account
other than the admin sees only the traces of its own jobs.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from zstackpy.api.http.auth import authenticate
from zstackpy.api.http.errors import error_response
from zstackpy.api.http.frontend import ApiFrontend
from zstackpy.api.jobs import JobState, JobView
from zstackpy.core.errors import SysErr, ZError


def _iso(job: JobView) -> tuple[str, str | None]:
    finished = job.finished_date.isoformat() if job.finished_date is not None else None
    return job.create_date.isoformat(), finished


def trace_body(job: JobView, live: list[dict[str, Any]] | None) -> dict[str, Any]:
    """The answer: the job's outline and its traces; while it runs, ``live`` (what its node
    has collected so far; ``[]`` on another node)."""
    created, finished = _iso(job)
    return {
        "jobUuid": job.uuid,
        "apiName": job.api_name,
        "state": str(job.state),
        "resourceUuid": job.resource_uuid,
        "createDate": created,
        "finishedDate": finished,
        "error": None if job.error is None else job.error.model_dump(mode="json"),
        "traces": (live or []) if job.state is JobState.PROCESSING else (job.traces or []),
    }


class JobTraceRoute:
    def __init__(self, frontend: ApiFrontend) -> None:
        self.frontend = frontend

    async def handle(self, request: web.Request) -> web.Response:
        try:
            auth = await authenticate(self.frontend.ctx, request, "a job's trace")
            job_uuid = request.match_info["uuid"]
            job = await self.frontend.job(job_uuid, "job")
            if not auth.is_admin and job.account_uuid != auth.account_uuid:
                # As if it did not exist: another account's job UUIDs are not to be probed.
                raise ZError(
                    SysErr.RESOURCE_NOT_FOUND,
                    f"no job {job_uuid}: it never existed or has expired",
                    uuid=job_uuid,
                )
        except ZError as exc:
            return error_response(exc.info())
        live = self.frontend.jobs.live_traces(job.uuid)
        return web.json_response(trace_body(job, live))
