"""Global configs of the backup storage domain (category ``backupStorage``, names as
ZStack's where ZStack has them)."""

from __future__ import annotations

from zstackpy.core.config.definitions import GlobalConfigDef

CATEGORY = "backupStorage"

PING_INTERVAL = GlobalConfigDef(
    category=CATEGORY,
    name="ping.interval",
    value_type=float,
    default=60.0,  # ZStack's default
    min=0.1,
    max=86400.0,
    description="seconds between two pings of each backup storage agent (each node pings "
    "the backup storage it owns); a ping waits at most min(interval, 10 s)",
)

PING_MAX_FAILURE = GlobalConfigDef(
    category=CATEGORY,
    name="ping.maxFailure",
    value_type=int,
    default=3,  # as ZStack's host ping.maxFailure
    min=1,
    max=100,
    description="pings in a row a Connected backup storage may miss before it becomes "
    "Disconnected; a Disconnected one is reconnected at every ping until it answers",
)

PING_PARALLELISM = GlobalConfigDef(
    category=CATEGORY,
    name="ping.parallelismDegree",
    value_type=int,
    default=50,  # ZStack's default
    min=1,
    max=10000,
    description="backup storage pinged at the same time by one node",
)

BACKUP_STORAGE_CONFIGS = (PING_INTERVAL, PING_MAX_FAILURE, PING_PARALLELISM)
