"""What a service gets from its node: one object, built once by the node at start-up."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from zstackpy.core.agent import AgentClient
    from zstackpy.core.bus import CloudBus
    from zstackpy.core.config import GlobalConfigs
    from zstackpy.core.db import Database
    from zstackpy.core.flow import FlowRegistry
    from zstackpy.core.health import HealthCheck
    from zstackpy.core.plugin import PluginRegistry
    from zstackpy.core.ring import Ring
    from zstackpy.core.settings import NodeSettings
    from zstackpy.core.workqueue import WorkQueues


@dataclass
class NodeContext:
    node_uuid: str
    settings: NodeSettings
    bus: CloudBus
    ring: Ring
    db: Database
    queues: WorkQueues
    flows: FlowRegistry
    configs: GlobalConfigs
    plugins: PluginRegistry
    agents: AgentClient
    health: HealthCheck | None = None  # the node's own check (IsReadyToGo)
    # Asks the process to drain and stop (DrainManagementNode); None when the node runs
    # inside a program that manages its life itself (tests, embedding).
    request_stop: Callable[[], None] | None = None
