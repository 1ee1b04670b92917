"""The ApiJobVO table: one row per async API call (and per legacy-RPC async call)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import DateTime, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from zstackpy.core.db.models import NOW, Base


class JobState(StrEnum):
    PROCESSING = "Processing"
    DONE = "Done"
    FAILED = "Failed"


class ApiJobVO(Base):
    """``result`` is JSON text: the reply body when Done, the ErrorInfo when Failed.

    ``trace`` is JSON text too: the flow traces of the chains the job ran on the node that
    ran it (``core.flow.collect``), kept for success and failure; NULL while Processing and
    for jobs that ended without running (node gone).

    ``timeout_ms`` and ``resource_uuid`` are kept so that a request retried with the same
    ``X-Job-UUID`` gets exactly the 202 body the first one got.
    """

    __tablename__ = "ApiJobVO"
    # The INSERT brings create_date back (RETURNING): the job's view needs no second read.
    __mapper_args__ = {"eager_defaults": True}  # noqa: RUF012  # SQLAlchemy's declaration

    uuid: Mapped[str] = mapped_column(String(32), primary_key=True)
    api_name: Mapped[str] = mapped_column(String(255))
    state: Mapped[str] = mapped_column(String(32), index=True)
    node_uuid: Mapped[str] = mapped_column(String(32), index=True)
    account_uuid: Mapped[str | None] = mapped_column(String(32), index=True)
    resource_uuid: Mapped[str | None] = mapped_column(String(32))
    timeout_ms: Mapped[int] = mapped_column(Integer)
    result: Mapped[str | None] = mapped_column(Text)
    trace: Mapped[str | None] = mapped_column(Text)
    create_date: Mapped[datetime] = mapped_column(DateTime, server_default=NOW)
    finished_date: Mapped[datetime | None] = mapped_column(DateTime)
