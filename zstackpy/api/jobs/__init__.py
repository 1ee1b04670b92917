"""API jobs: the record of every async API call, kept in the database so any node can
answer a poll and a job whose node died ends Failed instead of Processing forever."""

from zstackpy.api.jobs.models import ApiJobVO, JobState
from zstackpy.api.jobs.service import ApiJobService, JobView, reply_body

__all__ = ["ApiJobService", "ApiJobVO", "JobState", "JobView", "reply_body"]
