"""What both front-ends share: timeouts, sync calls and async job submission."""

from __future__ import annotations

from dataclasses import dataclass

from zstackpy.api.jobs import ApiJobService, JobView
from zstackpy.api.messages import APICreateMessage, APIMessage
from zstackpy.core.bus.message import Reply
from zstackpy.core.context import NodeContext
from zstackpy.core.errors import SysErr, ZError
from zstackpy.core.ids import new_uuid

# ZStack's default API timeout for async APIs: long enough for a VM to boot or an image to
# download; clients shorten it with X-API-Timeout.
DEFAULT_ASYNC_TIMEOUT_S = 1800.0


@dataclass(frozen=True, slots=True)
class ApiFrontend:
    ctx: NodeContext
    jobs: ApiJobService

    def timeout_s(self, msg: APIMessage, requested: float | None) -> float:
        if requested is not None:
            return requested
        spec = msg.api
        if spec is not None and spec.is_async:
            return DEFAULT_ASYNC_TIMEOUT_S
        return self.ctx.settings.call_timeout

    async def call(self, msg: APIMessage, timeout_s: float) -> Reply:
        """A sync API: the reply, success or error (the bus never raises for those)."""
        msg.api_timeout_s = timeout_s
        # This node's own portal (see ApiJobService._run): a call through the shared
        # queue is failed by no one if the node that took it dies.
        return await self.ctx.bus.call(msg, timeout=timeout_s, node=self.ctx.node_uuid)

    async def submit(
        self, msg: APIMessage, job_uuid: str | None, timeout_s: float
    ) -> tuple[JobView, bool]:
        """An async API as a job; ``(job, False)`` when the client retried ``job_uuid``."""
        if isinstance(msg, APICreateMessage) and msg.resource_uuid is None:
            # Chosen here, not at the portal, so the 202 can tell the client the new
            # resource's UUID: it can find the resource even if it loses the job.
            msg.resource_uuid = new_uuid()
        return await self.jobs.submit(job_uuid or new_uuid(), msg, timeout_s)

    async def job(self, job_uuid: str, noun: str) -> JobView:
        """The job, or ZError SYS.1003 saying it never existed or has expired."""
        job = await self.jobs.get(job_uuid.lower())
        if job is None:
            raise ZError(
                SysErr.RESOURCE_NOT_FOUND,
                f"no {noun} {job_uuid}: it never existed or has expired",
                uuid=job_uuid,
            )
        return job
