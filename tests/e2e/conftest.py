from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from zstackpy.core.bus.inproc import InProcBroker
from zstackpy.core.db import upgrade
from zstackpy.core.settings import NodeSettings
from zstackpy.node.node import ManagementNode


@pytest.fixture
def node_settings(tmp_path: Path) -> NodeSettings:
    return NodeSettings(
        data_dir=tmp_path,
        db_url=f"sqlite+aiosqlite:///{tmp_path / 'zstack.db'}",
        http_port=0,
        bus_url=None,
        plugins=[],
    )


@pytest.fixture
async def migrated(node_settings: NodeSettings) -> NodeSettings:
    await upgrade(node_settings.database_url)
    return node_settings


NodeFactory = Callable[..., "AsyncIterator[ManagementNode]"]


@pytest.fixture
async def start_node(migrated: NodeSettings) -> AsyncIterator[Callable[..., object]]:
    """Start nodes on one SQLite file and one in-process broker (a cluster in one process)."""
    broker = InProcBroker()
    nodes: list[ManagementNode] = []

    async def start(**overrides: object) -> ManagementNode:
        settings = migrated.model_copy(update=overrides)
        node = ManagementNode(settings, broker=broker)
        await node.start()
        nodes.append(node)
        return node

    yield start
    for node in reversed(nodes):
        if node.state.value in ("ready", "fenced"):
            await node.stop()
