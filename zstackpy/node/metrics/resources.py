"""Hosts by status and state, VMs by state: counted when scraped, not kept per change.

One GROUP BY per table, answered from a copy for ``ttl_s`` seconds, so scrapes from several
Prometheus servers (or a fast one) cost the database one query per table per window. The
tables are found in the metadata by name, so the node needs no import of the services
that own them; a table whose plugin is not loaded is left out.
"""

from __future__ import annotations

import asyncio
import logging
import time

from sqlalchemy import Table, func, select

from zstackpy.core.coalesce import CoalescedReads
from zstackpy.core.db import Base, Database

log = logging.getLogger(__name__)

DEFAULT_TTL_S = 5.0
_QUERY_TIMEOUT_S = 10.0

Counts = dict[tuple[str, ...], int]


class ResourceCounts:
    def __init__(self, db: Database, ttl_s: float = DEFAULT_TTL_S) -> None:
        self.db = db
        self.ttl_s = ttl_s
        self.hosts: Counts = {}  # (status, state) -> hosts
        self.vms: Counts = {}  # (state,) -> VMs
        self.is_stale = True  # the last refresh failed: the copies are older than ttl_s
        self._read_at = float("-inf")
        # Concurrent scrapes share one refresh (core.coalesce), no lock.
        self._refreshes: CoalescedReads[None, None] = CoalescedReads(self._refresh)

    async def refresh(self) -> None:
        """Re-count if the copy is older than ``ttl_s``; a failure keeps the old copy."""
        await self._refreshes.read(None)

    async def _refresh(self, _: None) -> None:
        if time.monotonic() - self._read_at < self.ttl_s:
            return
        try:
            async with asyncio.timeout(_QUERY_TIMEOUT_S):
                self.hosts = await self._count("HostVO", "status", "state")
                self.vms = await self._count("VmInstanceVO", "state")
        except Exception as exc:
            self.is_stale = True
            log.warning("metrics: counting hosts and VMs failed: %s", exc)
            return
        self.is_stale = False
        self._read_at = time.monotonic()

    async def _count(self, table_name: str, *columns: str) -> Counts:
        table = Base.metadata.tables.get(table_name)
        if not isinstance(table, Table):
            return {}
        cols = [table.c[name] for name in columns]
        query = select(*cols, func.count()).group_by(*cols)
        async with self.db.session() as session:
            rows = (await session.execute(query)).all()
        return {tuple(str(v) for v in row[:-1]): int(row[-1]) for row in rows}
