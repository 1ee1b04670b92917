"""Transactions the database gave up on for reasons of its own, run again.

InnoDB breaks a lock cycle by rolling one transaction back (error 1213, "try restarting
transaction") and ends a wait past ``innodb_lock_wait_timeout`` (1205). On a cluster both
are ordinary events: a burst's group-commit batches hold the shared locks their foreign-key
checks take on host and storage rows until they commit, while capacity reservations update
those rows, and the smaller transaction, the reservation, is the one InnoDB sacrifices.
Nothing of the victim stayed, so running it again is what the server asks for.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

from sqlalchemy.exc import DBAPIError

log = logging.getLogger(__name__)

T = TypeVar("T")

DEADLOCK = 1213
LOCK_WAIT_TIMEOUT = 1205
TRANSIENT_CODES = frozenset({DEADLOCK, LOCK_WAIT_TIMEOUT})
ATTEMPTS = 5
# Apart at random, so that the transactions of one cycle do not meet again in step.
BACKOFF_S = 0.02


def is_transient(exc: BaseException) -> bool:
    """A database error that a new attempt of the same transaction may not meet."""
    if not isinstance(exc, DBAPIError):
        return False
    args: tuple[object, ...] = getattr(exc.orig, "args", ())
    return bool(args) and args[0] in TRANSIENT_CODES


async def retrying(transaction: Callable[[], Awaitable[T]], what: str) -> T:
    """``transaction()`` (a whole transaction, begun and ended inside), again after a
    transient failure, up to ATTEMPTS times; other errors are raised at once."""
    for attempt in range(1, ATTEMPTS + 1):
        try:
            return await transaction()
        except DBAPIError as exc:
            if attempt == ATTEMPTS or not is_transient(exc):
                raise
            log.info("%s: %s; attempt %d of %d", what, exc.orig, attempt + 1, ATTEMPTS)
        await asyncio.sleep(random.uniform(0, BACKOFF_S * attempt))  # noqa: S311  # jitter, not a secret
    raise AssertionError("unreachable: the last attempt returns or raises")
