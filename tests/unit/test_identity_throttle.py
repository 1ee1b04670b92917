"""Failed-login throttle: counting window, lock, reset on success, memory bound."""

from __future__ import annotations

import pytest

from zstackpy.services.identity import throttle as throttle_module
from zstackpy.services.identity.throttle import LoginThrottle, ThrottlePolicy

POLICY = ThrottlePolicy(max_failures=3, window_s=60.0, lock_s=30.0)


def test_locks_after_max_failures_within_the_window() -> None:
    t = LoginThrottle()
    assert not t.failed("admin", 0.0, POLICY)
    assert not t.failed("admin", 1.0, POLICY)
    assert t.retry_after("admin", 1.5) is None
    assert t.failed("admin", 2.0, POLICY)
    assert t.retry_after("admin", 2.0) == pytest.approx(30.0)
    assert t.retry_after("admin", 31.9) == pytest.approx(0.1)
    assert t.retry_after("admin", 32.0) is None
    # Other names are not affected.
    assert t.retry_after("bob", 2.0) is None


def test_failures_outside_the_window_do_not_count() -> None:
    t = LoginThrottle()
    t.failed("admin", 0.0, POLICY)
    t.failed("admin", 10.0, POLICY)
    # The first failure left the window: this is the second, not the third.
    assert not t.failed("admin", 61.0, POLICY)
    assert t.retry_after("admin", 61.0) is None


def test_after_the_lock_the_count_starts_again() -> None:
    t = LoginThrottle()
    for now in (0.0, 1.0, 2.0):
        t.failed("admin", now, POLICY)
    assert not t.failed("admin", 33.0, POLICY)
    assert t.retry_after("admin", 33.0) is None


def test_success_clears_the_failures() -> None:
    t = LoginThrottle()
    t.failed("admin", 0.0, POLICY)
    t.failed("admin", 1.0, POLICY)
    t.succeeded("admin")
    assert not t.failed("admin", 2.0, POLICY)
    assert len(t) == 1


def test_prune_forgets_idle_names_but_keeps_locked_ones() -> None:
    t = LoginThrottle()
    t.failed("idle", 0.0, POLICY)
    for now in (50.0, 51.0, 52.0):
        t.failed("locked", now, POLICY)
    assert t.prune(70.0, POLICY) == 1
    assert len(t) == 1
    assert t.retry_after("locked", 70.0) is not None


def test_memory_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(throttle_module, "MAX_TRACKED_NAMES", 10)
    t = LoginThrottle()
    for i in range(50):
        t.failed(f"name{i}", 0.0, POLICY)
    assert len(t) <= 10
    # The newest names are the ones kept.
    assert t.failed("name49", 0.0, POLICY) is False
