"""Global configs of the virtual-router service (category ``virtualRouter``)."""

from __future__ import annotations

from zstackpy.core.config.definitions import GlobalConfigDef

CATEGORY = "virtualRouter"

PING_INTERVAL = GlobalConfigDef(
    category=CATEGORY,
    name="ping.interval",
    value_type=int,
    default=10,
    min=1,
    max=3600,
    description="seconds between two pings of each virtual router's agent by the node "
    "owning its guest L3 network; a router that does not answer, or whose VM is not "
    "Running, is started again (re-created if it cannot be) and sent all its services",
)

VR_CONFIGS = (PING_INTERVAL,)
