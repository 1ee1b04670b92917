"""Global configs of the host service (category ``host``, ZStack's names and defaults)."""

from __future__ import annotations

from zstackpy.core.config.definitions import GlobalConfigDef

CATEGORY = "host"

PING_INTERVAL = GlobalConfigDef(
    category=CATEGORY,
    name="ping.interval",
    value_type=float,
    default=60.0,  # ZStack's default
    min=0.05,  # small values are for tests; a round never overlaps the previous one
    max=86400.0,
    description="seconds between two pings of each Connected or Disconnected host",
)

PING_TIMEOUT = GlobalConfigDef(
    category=CATEGORY,
    name="ping.timeout",
    value_type=float,
    default=10.0,
    min=0.05,
    max=3600.0,
    description="seconds a ping may take before it counts as a failure",
)

PING_MAX_FAILURE = GlobalConfigDef(
    category=CATEGORY,
    name="ping.maxFailure",
    value_type=int,
    default=3,
    min=1,
    max=1000,
    description="failed pings in a row after which a Connected host becomes Disconnected",
)

PING_PARALLELISM = GlobalConfigDef(
    category=CATEGORY,
    name="ping.parallelismDegree",
    value_type=int,
    default=100,
    min=1,
    max=10000,
    description="pings a node runs at once",
)

AUTO_RECONNECT = GlobalConfigDef(
    category=CATEGORY,
    name="connection.autoReconnectOnError",
    value_type=bool,
    default=True,
    description="reconnect a Disconnected host as soon as it answers a ping again",
)

RECONNECT_ALL_ON_BOOT = GlobalConfigDef(
    category=CATEGORY,
    name="reconnectAllOnBoot",
    value_type=bool,
    default=True,
    description="at start, reconnect every host this node owns (hosts left Connecting "
    "are reconnected whatever this says: nothing stays transitional)",
)

CPU_OVER_PROVISIONING_RATIO = GlobalConfigDef(
    category=CATEGORY,
    name="cpu.overProvisioning.ratio",
    value_type=float,
    default=10.0,
    min=0.1,
    max=1000.0,
    description="vCPUs offered per physical CPU: a host's CPU capacity is cpuNum x ratio "
    "(read at each connect)",
)

# The allocator's own category (ZStack's names; the defaults are ours).
ALLOCATOR_CATEGORY = "hostAllocator"

USE_PAGINATION = GlobalConfigDef(
    category=ALLOCATOR_CATEGORY,
    name="usePagination",
    value_type=bool,
    default=True,
    description="read the candidate hosts of a VM's placement a page at a time (from a "
    "random place in the list, the next page only when no host of a page fits), so a "
    "placement costs the same with 100 hosts or 100,000",
)

PAGINATION_LIMIT = GlobalConfigDef(
    category=ALLOCATOR_CATEGORY,
    name="paginationLimit",
    value_type=int,
    default=200,
    min=1,
    max=100000,
    description="candidate hosts in one page of a paginated placement",
)

HOST_CONFIGS = (
    PING_INTERVAL,
    PING_TIMEOUT,
    PING_MAX_FAILURE,
    PING_PARALLELISM,
    AUTO_RECONNECT,
    RECONNECT_ALL_ON_BOOT,
    CPU_OVER_PROVISIONING_RATIO,
    USE_PAGINATION,
    PAGINATION_LIMIT,
)
