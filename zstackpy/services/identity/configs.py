"""Global configs of the identity service (category ``identity``, names as ZStack's where
ZStack has them)."""

from __future__ import annotations

from zstackpy.core.config.definitions import GlobalConfigDef

CATEGORY = "identity"

SESSION_TIMEOUT = GlobalConfigDef(
    category=CATEGORY,
    name="session.timeout",
    value_type=int,
    default=7200,  # ZStack's default
    min=1,
    max=365 * 86400,
    description="seconds a session lives after login; applies to sessions created later",
)

SESSION_CLEANUP_INTERVAL = GlobalConfigDef(
    category=CATEGORY,
    name="session.cleanup.interval",
    value_type=float,
    default=3600.0,
    min=0.1,
    max=86400.0,
    description="seconds between two purges of expired sessions (each node purges)",
)

LOGIN_MAX_FAILURES = GlobalConfigDef(
    category=CATEGORY,
    name="login.failure.max",
    value_type=int,
    default=5,
    min=1,
    max=1000,
    description="failed logins of one account name within login.failure.window that lock "
    "the name for login.lock.duration",
)

LOGIN_FAILURE_WINDOW = GlobalConfigDef(
    category=CATEGORY,
    name="login.failure.window",
    value_type=int,
    default=60,
    min=1,
    max=86400,
    description="seconds over which failed logins of one account name are counted",
)

LOGIN_LOCK_DURATION = GlobalConfigDef(
    category=CATEGORY,
    name="login.lock.duration",
    value_type=int,
    default=60,
    min=1,
    max=86400,
    description="seconds an account name is refused after too many failed logins",
)

IDENTITY_CONFIGS: tuple[GlobalConfigDef[int] | GlobalConfigDef[float], ...] = (
    SESSION_TIMEOUT,
    SESSION_CLEANUP_INTERVAL,
    LOGIN_MAX_FAILURES,
    LOGIN_FAILURE_WINDOW,
    LOGIN_LOCK_DURATION,
)
