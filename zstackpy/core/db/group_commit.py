"""Write transactions of concurrent tasks committed together: group commit (and reads of
concurrent tasks served in the same sessions).

A burst of VM creations writes the same few rows for each VM (its job, its row, its volume,
its NICs, its final state), each in a transaction of its own: a session, a checkout of the
connection, a BEGIN, the statements, a COMMIT and the pool's reset, for one or two rows.
The statements are the cheap part. Here a write is a *unit*, a coroutine function given a
session; units handed in while a batch is being written wait for the next batch, and a
batch runs all its units in one session and commits once.

What a unit may do: statements on the session it is given (ORM or Core, flushes
included), nothing else. Units run with autoflush off, so that the rows a batch adds are
inserted together at its commit (one statement per table, not one per unit): a unit that
queries rows it added itself flushes first. A unit that needs a value the database makes
(an autoincrement id) gets it from ``prepare``: each unit's ``prepare`` adds its rows, one
flush inserts them all, then the units run and read what the flush filled in. A unit must
not wait on anything but the database (no bus call, no sleep): the batch's other units wait
for it. It must not catch database errors to carry on, since a failed statement spoils the
transaction of the whole batch.

Failures: when a unit raises or the commit fails, the batch is rolled back and each of its
units runs again alone, in a transaction of its own, so each caller gets exactly what it
would have got writing alone (its result or its error) and no unit's effect depends on a
neighbour's failure. Units run twice then; they are database statements only, and the
first run was rolled back.

Reads: ``read`` takes a unit that only reads. It shares the batches, so a burst's reads
cost one session per batch too; an error it raises that is not the database's (a
ZError for a missing row, say) is its caller's answer and spoils nothing. Rows it returns
may be the very objects a concurrent read of the same row got: treat them as read-only.

Order: units of one batch were handed in concurrently (none waited for another's commit),
so no order between them is promised, as none is between two concurrent transactions. A
task that writes twice in a row still sees its first write committed before the second
is handed in.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from zstackpy.core.db.retry import retrying

log = logging.getLogger(__name__)

T = TypeVar("T")
Unit = Callable[[AsyncSession], Awaitable[T]]

# Big enough that a burst's units share few commits, small enough that one batch does not
# hold the connection for long while readers wait.
DEFAULT_MAX_BATCH = 200


Prepare = Callable[[AsyncSession], None]


@dataclass(eq=False, slots=True)
class _Pending(Generic[T]):
    unit: Unit[T]
    future: asyncio.Future[T]
    reads_only: bool
    prepare: Prepare | None = None


@dataclass(slots=True)
class _Raised:
    """A read unit's own error, answered to its caller once the batch is written."""

    error: Exception


class GroupCommit:
    """One per database; ``write`` from any task of the event loop that runs the node."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        read_sessions: async_sessionmaker[AsyncSession] | None = None,
        writers: int = 1,
        max_batch: int = DEFAULT_MAX_BATCH,
    ) -> None:
        self._sessions = sessions
        # A batch of reads only runs in a read session (Database.read_session: on MariaDB
        # no transaction, so no COMMIT round trip to end it).
        self._read_sessions = read_sessions or sessions
        self._writers = writers
        self._max_batch = max_batch
        self._pending: list[_Pending[Any]] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self.batches = 0  # batches committed, for tests and metrics
        self.units = 0  # units committed in them

    async def write(self, unit: Unit[T], *, prepare: Prepare | None = None) -> T:
        """What ``unit`` returned, once its transaction committed; raises what it raised
        (or the commit's error) when run alone. ``prepare(session)``, if given, only adds
        rows; they are flushed with the batch's others before ``unit`` runs.

        A caller cancelled after its batch started keeps the effect if the batch commits
        (as a caller cancelled during its own COMMIT would)."""
        return await self._submit(unit, reads_only=False, prepare=prepare)

    async def read(self, unit: Unit[T]) -> T:
        """What ``unit`` (statements that only read) returned, or what it raised."""
        return await self._submit(unit, reads_only=True)

    async def _submit(
        self, unit: Unit[T], *, reads_only: bool, prepare: Prepare | None = None
    ) -> T:
        loop = asyncio.get_running_loop()
        entry: _Pending[T] = _Pending(unit, loop.create_future(), reads_only, prepare)
        self._pending.append(entry)
        # One writer takes everything pending as one batch; another starts only when the
        # backlog is more than a batch. Starting writers eagerly split a burst's units into
        # batches of two or three (one transaction and COMMIT each): in cluster mode, four
        # eager writers per node made 3.4 transactions per VM against 0.9 with this rule.
        if not self._tasks or (
            len(self._tasks) < self._writers and len(self._pending) > self._max_batch
        ):
            task = loop.create_task(self._drain(), name="group-commit")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        try:
            return await asyncio.shield(entry.future)
        except asyncio.CancelledError:
            if entry in self._pending:
                self._pending.remove(entry)  # not started: it never runs
            raise

    async def _drain(self) -> None:
        try:
            while self._pending:
                batch = self._pending[: self._max_batch]
                del self._pending[: self._max_batch]
                try:
                    await self._commit(batch)
                finally:
                    for entry in batch:
                        if not entry.future.done():  # only when this task was cancelled
                            entry.future.cancel()
        finally:
            # In the same step as the last look at the queue: a done-callback runs later,
            # and a write handed in meanwhile would see this writer, finished, as running
            # and wait for a writer that never comes.
            task = asyncio.current_task()
            if task is not None:
                self._tasks.discard(task)

    async def _commit(self, batch: list[_Pending[Any]]) -> None:
        if len(batch) == 1:
            await self._alone(batch[0])
            return
        results: list[Any] = []
        reads_only = all(entry.reads_only for entry in batch)
        sessions = self._read_sessions if reads_only else self._sessions
        try:
            async with sessions() as session, session.begin():
                await _prepare(session, batch)
                for entry in batch:
                    results.append(await self._run_unit(entry, session))
        except Exception:
            log.debug("a batch of %d writes failed; each runs alone", len(batch))
            for entry in batch:
                await self._alone(entry)
            return
        self.batches += 1
        self.units += len(batch)
        for entry, result in zip(batch, results, strict=True):
            if entry.future.done():
                continue
            if isinstance(result, _Raised):
                entry.future.set_exception(result.error)
            else:
                entry.future.set_result(result)

    @staticmethod
    async def _run_unit(entry: _Pending[Any], session: AsyncSession) -> Any:
        if not entry.reads_only:
            return await entry.unit(session)
        try:
            return await entry.unit(session)
        except SQLAlchemyError:
            raise  # the session may be spoilt: the batch's units run alone
        except Exception as exc:
            return _Raised(exc)

    async def _alone(self, entry: _Pending[Any]) -> None:
        sessions = self._read_sessions if entry.reads_only else self._sessions

        async def transaction() -> Any:
            async with sessions() as session, session.begin():
                await _prepare(session, [entry])
                return await entry.unit(session)

        try:
            result = await retrying(transaction, "a write transaction")
        except Exception as exc:
            if not entry.future.done():
                entry.future.set_exception(exc)
            return
        self.batches += 1
        self.units += 1
        if not entry.future.done():
            entry.future.set_result(result)

    async def close(self) -> None:
        """Wait for the batches under way (the node is stopping)."""
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)


async def _prepare(session: AsyncSession, batch: list[_Pending[Any]]) -> None:
    """Autoflush off for the batch's session; the prepared rows inserted together."""
    session.sync_session.autoflush = False
    prepared = False
    for entry in batch:
        if entry.prepare is not None:
            entry.prepare(session)
            prepared = True
    if prepared:
        await session.flush()
