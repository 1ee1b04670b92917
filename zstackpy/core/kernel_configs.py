"""Global configs of the kernel itself (the node's heartbeat and eviction, the bus's
slow-message log)."""

from __future__ import annotations

from zstackpy.core.config.definitions import GlobalConfigDef

HEARTBEAT_INTERVAL = GlobalConfigDef(
    category="node",
    name="heartbeatInterval",
    value_type=float,
    default=5.0,
    min=0.1,
    max=300.0,
    description="seconds between two heartbeats a management node writes to the database",
)

HEARTBEAT_MISS_COUNT = GlobalConfigDef(
    category="node",
    name="heartbeatMissCount",
    value_type=int,
    default=3,
    min=2,  # one missed beat can be a slow query; two in a row means the node is gone
    max=100,
    description="heartbeat intervals a node may miss before the other nodes evict it",
)

SLOW_MESSAGE_THRESHOLD = GlobalConfigDef(
    category="cloudBus",
    name="slowMessageThreshold",
    value_type=float,
    default=10.0,
    min=0.0,
    max=86400.0,
    description=(
        "seconds: a message whose handler takes longer is logged (WARNING) with the flow "
        "chains it ran; 0 turns the log off"
    ),
)

KERNEL_CONFIGS: tuple[GlobalConfigDef[float] | GlobalConfigDef[int], ...] = (
    HEARTBEAT_INTERVAL,
    HEARTBEAT_MISS_COUNT,
    SLOW_MESSAGE_THRESHOLD,
)
