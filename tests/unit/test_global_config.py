"""Global configs: definitions, the store, and the service over a real in-process CloudBus."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from tests.support.mariadb import fresh_mariadb
from zstackpy.core.agent import AgentClient
from zstackpy.core.bus import CloudBus
from zstackpy.core.bus.inproc import InProcBroker, InProcTransport
from zstackpy.core.bus.message import decode, encode
from zstackpy.core.config import (
    GetGlobalConfigMsg,
    GetGlobalConfigReply,
    GlobalConfigChangedEvent,
    GlobalConfigDef,
    GlobalConfigInventory,
    GlobalConfigs,
    GlobalConfigService,
    ListGlobalConfigsMsg,
    ListGlobalConfigsReply,
    UpdateGlobalConfigMsg,
    UpdateGlobalConfigReply,
)
from zstackpy.core.context import NodeContext
from zstackpy.core.db import Database, GlobalConfigVO, upgrade
from zstackpy.core.errors import KernelErr, ZError
from zstackpy.core.flow import FlowRegistry
from zstackpy.core.ids import new_uuid
from zstackpy.core.plugin import PluginRegistry
from zstackpy.core.ring import Ring
from zstackpy.core.settings import NodeSettings
from zstackpy.core.workqueue import WorkQueues


def _even(value: int) -> None:
    if value % 2:
        raise ValueError("must be even")


INTERVAL = GlobalConfigDef(
    category="test",
    name="interval",
    value_type=float,
    default=2.5,
    min=0.1,
    max=60.0,
    description="seconds between two probes",
)
RETRIES = GlobalConfigDef(
    category="test", name="retries", value_type=int, default=4, min=0, max=10, validator=_even
)
ENABLED = GlobalConfigDef(category="test", name="enabled", value_type=bool, default=True)
MODE = GlobalConfigDef(
    category="other", name="mode", value_type=str, default="fast", choices=("fast", "safe")
)
ALL = (INTERVAL, RETRIES, ENABLED, MODE)


def make_configs() -> GlobalConfigs:
    configs = GlobalConfigs()
    for defn in ALL:
        configs.define(defn)
    return configs


# ----- definitions and the in-memory store -------------------------------------------------


def test_values_are_typed_defaults_before_load() -> None:
    configs = make_configs()
    assert configs.get("test", "interval") == 2.5
    assert configs.get_float("test", "interval") == 2.5
    assert configs.get_int("test", "retries") == 4
    assert configs.get_bool("test", "enabled") is True
    assert configs.get_str("other", "mode") == "fast"
    assert configs.value(RETRIES) == 4
    assert [d.key for d in configs.definitions()] == [
        "other.mode",
        "test.enabled",
        "test.interval",
        "test.retries",
    ]


@pytest.mark.parametrize(
    ("defn", "raw", "expected"),
    [
        (INTERVAL, "7", 7.0),
        (INTERVAL, " 0.5 ", 0.5),
        (INTERVAL, 3, 3.0),
        (RETRIES, "6", 6),
        (RETRIES, 0, 0),
        (ENABLED, "FALSE", False),
        (ENABLED, "true", True),
        (ENABLED, False, False),
        (MODE, "safe", "safe"),
    ],
)
def test_parse_accepts_text_and_typed_values(
    defn: GlobalConfigDef[Any], raw: Any, expected: Any
) -> None:
    value = defn.parse(raw)
    assert value == expected
    assert type(value) is type(expected)
    assert defn.parse(defn.to_text(value)) == value


@pytest.mark.parametrize(
    ("defn", "raw", "constraint"),
    [
        (INTERVAL, "0.01", "min=0.1"),
        (INTERVAL, "61", "max=60.0"),
        (INTERVAL, "nan", "finite"),
        (INTERVAL, math.inf, "finite"),
        (INTERVAL, "fast", "type=float"),
        (INTERVAL, True, "type=float"),
        (RETRIES, "3", "validator"),
        (RETRIES, "12", "max=10"),
        (RETRIES, "2.0", "type=int"),
        (RETRIES, True, "type=int"),
        (ENABLED, "maybe", "type=bool"),
        (ENABLED, 1, "type=bool"),
        (MODE, "slow", "choices=[fast, safe]"),
        (MODE, 3, "type=str"),
    ],
)
def test_invalid_values_are_refused_with_the_reason(
    defn: GlobalConfigDef[Any], raw: Any, constraint: str
) -> None:
    with pytest.raises(ZError) as caught:
        defn.parse(raw)
    err = caught.value
    assert err.code == KernelErr.CONFIG_INVALID_VALUE
    assert defn.key in err.description
    assert err.details["category"] == defn.category
    assert err.details["name"] == defn.name
    assert err.details["constraint"] == constraint


def test_a_definition_with_an_invalid_default_is_a_bug() -> None:
    with pytest.raises(ValueError, match="invalid default"):
        GlobalConfigDef(category="test", name="bad", value_type=int, default=11, max=10)


def test_defining_a_config_twice_is_refused() -> None:
    configs = make_configs()
    with pytest.raises(ValueError, match="defined twice"):
        configs.define(GlobalConfigDef(category="test", name="retries", value_type=int, default=2))


async def test_unknown_configs_are_not_found() -> None:
    configs = make_configs()
    for attempt in (
        lambda: configs.get("test", "nope"),
        lambda: configs.get_int("nope", "retries"),
        lambda: configs.watch("test", "nope", lambda old, new: None),
    ):
        with pytest.raises(ZError) as caught:
            attempt()
        assert caught.value.code == KernelErr.CONFIG_NOT_FOUND
        assert caught.value.details["category"] in ("test", "nope")
    with pytest.raises(ZError) as caught:
        await configs.apply_change("test", "nope", "1")
    assert caught.value.code == KernelErr.CONFIG_NOT_FOUND


def test_asking_for_the_wrong_type_is_a_programming_error() -> None:
    with pytest.raises(TypeError, match="is a float, not a int"):
        make_configs().get_int("test", "interval")


async def test_apply_change_runs_sync_and_async_watchers() -> None:
    configs = make_configs()
    seen: list[tuple[str, Any, Any]] = []

    async def async_watcher(old: Any, new: Any) -> None:
        seen.append(("async", old, new))

    def failing_watcher(old: Any, new: Any) -> None:
        raise RuntimeError("a broken watcher must not stop the others")

    configs.watch("test", "retries", failing_watcher)
    configs.watch("test", "retries", async_watcher)
    unwatch = configs.watch("test", "retries", lambda old, new: seen.append(("sync", old, new)))

    assert await configs.apply_change("test", "retries", "8") is True
    assert configs.get_int("test", "retries") == 8
    assert seen == [("async", 4, 8), ("sync", 4, 8)]

    assert await configs.apply_change("test", "retries", 8) is False  # no change, no calls
    unwatch()
    await configs.apply_change("test", "retries", "2")
    assert seen == [("async", 4, 8), ("sync", 4, 8), ("async", 8, 2)]


async def test_apply_change_refuses_invalid_values_and_keeps_the_cache() -> None:
    configs = make_configs()
    calls: list[Any] = []
    configs.watch("test", "retries", lambda old, new: calls.append(new))
    with pytest.raises(ZError) as caught:
        await configs.apply_change("test", "retries", "5")
    assert caught.value.code == KernelErr.CONFIG_INVALID_VALUE
    assert configs.get_int("test", "retries") == 4
    assert calls == []


def test_inventory_is_camel_case_on_the_wire() -> None:
    reply = UpdateGlobalConfigReply(
        inventory=GlobalConfigInventory(
            category="test", name="retries", value="6", default_value="4", value_type="int"
        )
    )
    body = encode(reply)
    assert b'"defaultValue":"4"' in body
    decoded = decode("UpdateGlobalConfigReply", body)
    assert isinstance(decoded, UpdateGlobalConfigReply)
    assert decoded.inventory.default_value == "4"


# ----- the database ----------------------------------------------------------------------


@pytest.fixture(
    params=[
        pytest.param("sqlite"),
        pytest.param("mariadb", marks=pytest.mark.real_server),
    ]
)
async def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """A migrated database: SQLite always, the real MariaDB as a second, real-server run."""
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'zstack.db'}"
        await upgrade(url)
        yield url
    else:
        async with fresh_mariadb() as url:
            await upgrade(url)
            yield url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'zstack.db'}"


async def stored_rows(url: str) -> dict[tuple[str, str], str]:
    db = Database(url)
    try:
        async with db.session() as session:
            rows = (await session.execute(select(GlobalConfigVO))).scalars().all()
    finally:
        await db.close()
    return {(r.category, r.name): r.value for r in rows}


async def test_load_stores_defaults_and_a_restart_keeps_stored_values(sqlite_url: str) -> None:
    await upgrade(sqlite_url)
    db = Database(sqlite_url)
    try:
        configs = make_configs()
        await configs.load(db)
        assert await stored_rows(sqlite_url) == {
            ("test", "interval"): "2.5",
            ("test", "retries"): "4",
            ("test", "enabled"): "true",
            ("other", "mode"): "fast",
        }
        async with db.session() as session, session.begin():
            await session.execute(
                update(GlobalConfigVO).where(GlobalConfigVO.name == "retries").values(value="6")
            )
        restarted = make_configs()
        await restarted.load(db)
        assert restarted.get_int("test", "retries") == 6
        await restarted.load(db)  # idempotent
        assert restarted.get_int("test", "retries") == 6
    finally:
        await db.close()


async def test_a_stored_value_that_no_longer_validates_falls_back_to_default(
    sqlite_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    await upgrade(sqlite_url)
    db = Database(sqlite_url)
    try:
        await make_configs().load(db)
        async with db.session() as session, session.begin():
            await session.execute(
                update(GlobalConfigVO).where(GlobalConfigVO.name == "retries").values(value="7")
            )
        configs = make_configs()
        await configs.load(db)
    finally:
        await db.close()
    assert configs.get_int("test", "retries") == 4
    assert "test.retries is invalid" in caplog.text
    assert (await stored_rows(sqlite_url))[("test", "retries")] == "7"  # left for an operator


# ----- the service over a real CloudBus --------------------------------------------------


@dataclass
class Node:
    ctx: NodeContext
    bus: CloudBus
    configs: GlobalConfigs
    seen: list[tuple[Any, Any]] = field(default_factory=list)

    def record(self, old: Any, new: Any) -> None:
        self.seen.append((old, new))


ClusterFactory = Callable[[int], Awaitable[list[Node]]]


@pytest.fixture
async def cluster(db_url: str, tmp_path: Path) -> AsyncIterator[ClusterFactory]:
    """Nodes sharing one InProcBroker and one database, each with its own engine, bus and
    config cache: a cluster in one process."""
    async with AsyncExitStack() as stack:

        async def start(count: int) -> list[Node]:
            broker = InProcBroker()
            uuids = [new_uuid() for _ in range(count)]
            nodes = []
            for node_uuid in uuids:
                db = Database(db_url)
                stack.push_async_callback(db.close)
                bus = CloudBus(node_uuid, InProcTransport(broker), Ring(uuids), default_timeout=5)
                configs = make_configs()
                await configs.load(db)  # as the node does before its services start
                ctx = NodeContext(
                    node_uuid=node_uuid,
                    settings=NodeSettings(data_dir=tmp_path, db_url=db_url),
                    bus=bus,
                    ring=bus.ring,
                    db=db,
                    queues=WorkQueues(),
                    flows=FlowRegistry(),
                    configs=configs,
                    plugins=PluginRegistry(),
                    agents=AgentClient(WorkQueues()),
                )
                service = GlobalConfigService(ctx)
                await bus.register(service.name, service.handle)
                await stack.enter_async_context(service)
                await bus.start()
                stack.push_async_callback(bus.stop)
                node = Node(ctx, bus, configs)
                configs.watch("test", "retries", node.record)
                nodes.append(node)
            return nodes

        yield start


async def test_update_is_stored_and_reaches_every_node(
    cluster: ClusterFactory, db_url: str
) -> None:
    first, second = await cluster(2)
    reply = await first.bus.request(
        UpdateGlobalConfigMsg(category="test", name="retries", value="8"), UpdateGlobalConfigReply
    )
    assert reply.inventory.value == "8"
    assert reply.inventory.default_value == "4"
    assert (await stored_rows(db_url))[("test", "retries")] == "8"
    for node in (first, second):
        assert node.configs.get_int("test", "retries") == 8
        assert node.seen == [(4, 8)]

    got = await second.bus.request(
        GetGlobalConfigMsg(category="test", name="retries"), GetGlobalConfigReply
    )
    assert got.inventory.value == "8"


async def test_invalid_update_changes_nothing(cluster: ClusterFactory, db_url: str) -> None:
    first, second = await cluster(2)
    before = await stored_rows(db_url)
    for value in ("5", "11", "lots"):
        reply = await first.bus.call(
            UpdateGlobalConfigMsg(category="test", name="retries", value=value)
        )
        assert not reply.success
        assert reply.error is not None
        assert reply.error.code == KernelErr.CONFIG_INVALID_VALUE
        assert reply.error.details["value"] == value
    assert await stored_rows(db_url) == before
    for node in (first, second):
        assert node.configs.get_int("test", "retries") == 4
        assert node.seen == []


async def test_unknown_config_is_not_found_over_the_bus(cluster: ClusterFactory) -> None:
    (node,) = await cluster(1)
    for msg in (
        UpdateGlobalConfigMsg(category="test", name="nope", value="1"),
        GetGlobalConfigMsg(category="nope", name="retries"),
    ):
        with pytest.raises(ZError) as caught:
            await node.bus.request(msg, UpdateGlobalConfigReply)
        assert caught.value.code == KernelErr.CONFIG_NOT_FOUND


async def test_list_filters_by_category(cluster: ClusterFactory) -> None:
    (node,) = await cluster(1)
    every = await node.bus.request(ListGlobalConfigsMsg(), ListGlobalConfigsReply)
    assert [(i.category, i.name) for i in every.inventories] == [
        ("other", "mode"),
        ("test", "enabled"),
        ("test", "interval"),
        ("test", "retries"),
    ]
    other = await node.bus.request(ListGlobalConfigsMsg(category="other"), ListGlobalConfigsReply)
    assert [(i.name, i.value, i.value_type) for i in other.inventories] == [("mode", "fast", "str")]


async def test_a_late_stale_event_does_not_roll_a_node_back(cluster: ClusterFactory) -> None:
    first, second = await cluster(2)
    for value in ("2", "6"):
        await first.bus.request(
            UpdateGlobalConfigMsg(category="test", name="retries", value=value),
            UpdateGlobalConfigReply,
        )
    # The event of the first change, delivered again after the second was committed, as
    # events from two nodes may cross: each node applies what is committed, not the event.
    await second.bus.publish(
        GlobalConfigChangedEvent(category="test", name="retries", old_value="4", new_value="2")
    )
    for node in (first, second):
        assert node.configs.get_int("test", "retries") == 6
        assert node.seen == [(4, 2), (2, 6)]


async def test_a_restarted_node_keeps_the_updated_value(
    cluster: ClusterFactory, db_url: str
) -> None:
    (node,) = await cluster(1)
    await node.bus.request(
        UpdateGlobalConfigMsg(category="other", name="mode", value="safe"), UpdateGlobalConfigReply
    )
    db = Database(db_url)
    try:
        restarted = make_configs()
        await restarted.load(db)
    finally:
        await db.close()
    assert restarted.get_str("other", "mode") == "safe"
