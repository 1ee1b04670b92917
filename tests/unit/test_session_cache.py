"""SessionCache: an entry is used until its session expires and at most ttl_s after it was
read; ended sessions (by uuid or by account) are forgotten at once."""

from __future__ import annotations

from datetime import timedelta

from zstackpy.api.messages import AuthContext
from zstackpy.core.clock import utcnow_seconds
from zstackpy.services.identity.session_cache import ForgetSessionsMsg, SessionCache


def auth(session: str, account: str = "acc1") -> AuthContext:
    return AuthContext(session_uuid=session, account_uuid=account)


def test_a_live_entry_is_used_and_an_expired_one_is_not() -> None:
    cache = SessionCache()
    cache.put(auth("s1"), utcnow_seconds() + timedelta(hours=1))
    cache.put(auth("s2"), utcnow_seconds() - timedelta(seconds=1))
    assert cache.get("s1") == auth("s1")
    assert cache.get("s2") is None
    assert cache.get("unknown") is None


def test_an_entry_older_than_the_ttl_is_read_again() -> None:
    cache = SessionCache(ttl_s=0.0)
    cache.put(auth("s1"), utcnow_seconds() + timedelta(hours=1))
    assert cache.get("s1") is None


def test_ended_sessions_are_forgotten_by_uuid_and_by_account() -> None:
    cache = SessionCache()
    later = utcnow_seconds() + timedelta(hours=1)
    for session, account in (("s1", "a"), ("s2", "a"), ("s3", "b")):
        cache.put(auth(session, account), later)
    cache.evict(ForgetSessionsMsg(session_uuids=["s3"]))
    assert cache.get("s3") is None
    assert cache.get("s1") is not None
    cache.evict(ForgetSessionsMsg(account_uuid="a"))
    assert cache.get("s1") is None
    assert cache.get("s2") is None


def test_the_cache_keeps_at_most_max_entries() -> None:
    cache = SessionCache(max_entries=2)
    later = utcnow_seconds() + timedelta(hours=1)
    for session in ("s1", "s2", "s3"):
        cache.put(auth(session), later)
    assert cache.get("s1") is None
    assert cache.get("s2") is not None
    assert cache.get("s3") is not None
