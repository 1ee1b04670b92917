"""Password hashing: argon2id of what the client sends (the SHA-512 hex digest of the plain
text), off the event loop and with bounded parallelism.

argon2 is slow and memory-hungry on purpose (about 0.1-0.2 s and 64 MiB per call with the
library's defaults), so every hash and verify runs in a worker thread, at most
``HASH_PARALLELISM`` at a time per node: a burst of logins must not take every thread of the
default executor or gigabytes of memory. Nothing here logs a password or a hash.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from zstackpy.core.workqueue import QueueKey, WorkQueues

log = logging.getLogger(__name__)

HASH_QUEUE = QueueKey("identity-password", "argon2")
HASH_PARALLELISM = 4
# Past this many waiting hashes a node answers QUEUE.1001 at once instead of queueing a
# flood it would take minutes to drain.
HASH_MAX_PENDING = 256


def sha512_hex(plain: str) -> str:
    """What a ZStack client sends as ``password`` for the plain text ``plain``."""
    return hashlib.sha512(plain.encode()).hexdigest()


def generate_password() -> str:
    """A random plain-text password: 144 bits, URL-safe, easy to paste."""
    return secrets.token_urlsafe(18)


class Passwords:
    """Hash and verify through a node's work queues; one instance per service."""

    def __init__(self, queues: WorkQueues, hasher: PasswordHasher | None = None) -> None:
        self._queues = queues
        self._hasher = hasher or PasswordHasher()
        self._dummy_hash: str | None = None

    async def hash(self, password: str) -> str:
        return await self._queues.run(
            HASH_QUEUE,
            asyncio.to_thread,
            self._hasher.hash,
            password,
            level=HASH_PARALLELISM,
            max_pending=HASH_MAX_PENDING,
        )

    async def verify(self, password_hash: str, password: str) -> bool:
        """True if ``password`` matches; False for a mismatch or a stored hash that is not
        argon2 (logged without the hash)."""
        return await self._queues.run(
            HASH_QUEUE,
            asyncio.to_thread,
            self._verify,
            password_hash,
            password,
            level=HASH_PARALLELISM,
            max_pending=HASH_MAX_PENDING,
        )

    async def burn_verify(self, password: str) -> None:
        """Spend what a real verify costs, for a login of an unknown account name: the
        answer time must not tell which names exist."""
        if self._dummy_hash is None:
            self._dummy_hash = await self.hash(generate_password())
        await self.verify(self._dummy_hash, password)

    def needs_rehash(self, password_hash: str) -> bool:
        try:
            return self._hasher.check_needs_rehash(password_hash)
        except InvalidHashError:
            return True

    def _verify(self, password_hash: str, password: str) -> bool:
        try:
            return self._hasher.verify(password_hash, password)
        except VerifyMismatchError:
            return False
        except (VerificationError, InvalidHashError) as exc:
            log.warning("a stored password hash cannot be verified: %s", type(exc).__name__)
            return False
