"""Password hashing: argon2 of the SHA-512 digest, off the loop, never the digest itself."""

from __future__ import annotations

import hashlib

from argon2 import PasswordHasher

from zstackpy.core.workqueue import WorkQueues
from zstackpy.services.identity.passwords import Passwords, generate_password, sha512_hex

# Cheap parameters: the unit tests check behaviour, not cost.
FAST = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


def test_sha512_hex_is_what_zstack_clients_send() -> None:
    assert sha512_hex("password") == hashlib.sha512(b"password").hexdigest()
    assert len(sha512_hex("x")) == 128


def test_generated_passwords_are_long_and_distinct() -> None:
    a, b = generate_password(), generate_password()
    assert a != b
    assert len(a) >= 24


async def test_hash_and_verify() -> None:
    passwords = Passwords(WorkQueues(), FAST)
    digest = sha512_hex("s3cret")
    stored = await passwords.hash(digest)
    assert stored.startswith("$argon2id$")
    assert digest not in stored
    assert await passwords.verify(stored, digest)
    assert not await passwords.verify(stored, sha512_hex("wrong"))


async def test_a_hash_that_is_not_argon2_never_verifies() -> None:
    passwords = Passwords(WorkQueues(), FAST)
    assert not await passwords.verify("not-a-hash", sha512_hex("x"))
    assert passwords.needs_rehash("not-a-hash")


async def test_burn_verify_costs_a_verify_and_answers_nothing() -> None:
    passwords = Passwords(WorkQueues(), FAST)
    await passwords.burn_verify(sha512_hex("x"))
    await passwords.burn_verify(sha512_hex("y"))


def test_weaker_parameters_ask_for_a_rehash() -> None:
    stored = FAST.hash("x")
    assert Passwords(WorkQueues()).needs_rehash(stored)
    assert not Passwords(WorkQueues(), FAST).needs_rehash(stored)
