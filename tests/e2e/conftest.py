from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import aiohttp
import pytest
from pydantic import SecretStr

from simulator import Simulator
from tests.support.api_client import ApiClient
from tests.support.datacenter import wait_for
from zstackpy.core.bus.inproc import InProcBroker
from zstackpy.core.db import upgrade
from zstackpy.core.settings import NodeSettings
from zstackpy.node.node import ManagementNode

ADMIN_PASSWORD = "admin-pw-for-tests"

Start = Callable[..., Awaitable[ManagementNode]]


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


@pytest.fixture
async def start_node(migrated: NodeSettings) -> AsyncIterator[Start]:
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
        # A drained node too: left running, its servers and client sessions were closed by
        # the collector in some later test (an "unclosed transport" warning failing it).
        if node.state.value in ("ready", "draining", "fenced"):
            await node.stop()


@pytest.fixture
def node_overrides() -> dict[str, object]:
    """Settings the ``node`` fixture starts with on top of ``node_settings``; a test module
    overrides this fixture to add its plugins (``{"plugins": [...]}``)."""
    return {}


@pytest.fixture
async def node(start_node: Start, node_overrides: dict[str, object]) -> ManagementNode:
    """One embedded node on a fresh SQLite file, with ADMIN_PASSWORD as admin's password;
    stopped at teardown (unless the test stopped it)."""
    return await start_node(admin_password=SecretStr(ADMIN_PASSWORD), **node_overrides)


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def login_admin(node: ManagementNode, http: aiohttp.ClientSession) -> ApiClient:
    """A client of ``node``'s REST API, logged in as admin with ADMIN_PASSWORD."""
    assert node.http is not None
    client = ApiClient(f"http://127.0.0.1:{node.http.port}", http)
    await client.login("admin", ADMIN_PASSWORD)
    return client


@pytest.fixture
async def admin(node: ManagementNode, http: aiohttp.ClientSession) -> ApiClient:
    return await login_admin(node, http)


@pytest.fixture
def sim(node: ManagementNode) -> Simulator:
    assert node.simulator is not None
    return node.simulator


@pytest.fixture
async def shared_sim() -> AsyncIterator[Simulator]:
    """A simulator of its own, whose hosts several in-process nodes drive."""
    async with Simulator() as simulator:
        yield simulator


@pytest.fixture
async def two_nodes(
    start_node: Start, shared_sim: Simulator
) -> tuple[ManagementNode, ManagementNode]:
    """Two nodes on one database and broker driving ``shared_sim``'s hosts, each in the
    other's ring (admin's password ADMIN_PASSWORD)."""
    options = {"simulator_url": shared_sim.base_url, "admin_password": SecretStr(ADMIN_PASSWORD)}
    first = await start_node(**options)
    second = await start_node(**options)

    async def both_joined() -> bool:
        return all(n.context.ring.nodes == {first.uuid, second.uuid} for n in (first, second))

    await wait_for(both_joined)
    return first, second
