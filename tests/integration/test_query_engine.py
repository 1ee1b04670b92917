"""The query engine against real SQL, on SQLite and MariaDB.

A little world of its own tables: zones, VMs in zones, NICs on VMs, EIPs on NICs, and backup
storage attached to zones through a hidden ref table. Zones z1, z2 belong to account A, z3, z4
to account B.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar

import pytest
from sqlalchemy import Boolean, DateTime, Double, Integer, String, event, select
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from tests.support.mariadb import fresh_mariadb
from zstackpy.api.messages import APIQueryMessage, APIQueryReply, Inventory, QueryCondition
from zstackpy.api.query import (
    Expansion,
    PseudoFieldContext,
    QueryableResource,
    QueryRegistry,
    parse_rest_condition,
    run_query,
)
from zstackpy.core.db.engine import Database
from zstackpy.core.db.models import Base, ResourceVO
from zstackpy.core.errors import SysErr, ZError

ACCOUNT_A = "a" * 32
ACCOUNT_B = "b" * 32


class QBase(DeclarativeBase):
    pass


class QZoneVO(QBase):
    __tablename__ = "QZoneVO"
    uuid: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    description: Mapped[str | None] = mapped_column(String(255))
    state: Mapped[str] = mapped_column(String(32))
    is_default: Mapped[bool] = mapped_column(Boolean)
    weight: Mapped[int] = mapped_column(Integer)
    ratio: Mapped[float] = mapped_column(Double)
    create_date: Mapped[datetime] = mapped_column(DateTime)


class QVmInstanceVO(QBase):
    __tablename__ = "QVmInstanceVO"
    uuid: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    zone_uuid: Mapped[str] = mapped_column(String(32))
    host_uuid: Mapped[str | None] = mapped_column(String(32))
    cpu_num: Mapped[int] = mapped_column(Integer)


class QVmNicVO(QBase):
    __tablename__ = "QVmNicVO"
    uuid: Mapped[str] = mapped_column(String(32), primary_key=True)
    vm_instance_uuid: Mapped[str] = mapped_column(String(32))
    ip: Mapped[str] = mapped_column(String(64))


class QEipVO(QBase):
    __tablename__ = "QEipVO"
    uuid: Mapped[str] = mapped_column(String(32), primary_key=True)
    vm_nic_uuid: Mapped[str] = mapped_column(String(32))
    vip_ip: Mapped[str] = mapped_column(String(64))


class QBackupStorageVO(QBase):
    __tablename__ = "QBackupStorageVO"
    uuid: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(255))


class QBackupStorageZoneRefVO(QBase):
    __tablename__ = "QBackupStorageZoneRefVO"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    zone_uuid: Mapped[str] = mapped_column(String(32))
    backup_storage_uuid: Mapped[str] = mapped_column(String(32))


class QZoneInventory(Inventory):
    uuid: str
    name: str
    description: str | None = None
    state: str
    is_default: bool
    weight: int
    ratio: float
    create_date: datetime


class QVmInstanceInventory(Inventory):
    uuid: str
    name: str
    zone_uuid: str
    host_uuid: str | None = None
    cpu_num: int


class QVmNicInventory(Inventory):
    uuid: str
    vm_instance_uuid: str
    ip: str


class QEipInventory(Inventory):
    uuid: str
    vm_nic_uuid: str
    vip_ip: str


class QBackupStorageInventory(Inventory):
    uuid: str
    name: str


class QBackupStorageZoneRefInventory(Inventory):
    id: int
    zone_uuid: str
    backup_storage_uuid: str


class QtQueryZoneMsg(APIQueryMessage):
    query_of: ClassVar[str] = "Zone"


def make_registry() -> QueryRegistry:
    registry = QueryRegistry()
    registry.register(
        QueryableResource(
            name="Zone",
            model=QZoneVO,
            inventory=QZoneInventory,
            expansions={
                "vmInstance": Expansion("VmInstance", "uuid", "zoneUuid"),
                "backupStorageRef": Expansion(
                    "BackupStorageZoneRef", "uuid", "zoneUuid", hidden=True
                ),
            },
            aliases={"backupStorage": "backupStorageRef.backupStorage"},
        )
    )
    registry.register(
        QueryableResource(
            name="VmInstance",
            model=QVmInstanceVO,
            inventory=QVmInstanceInventory,
            expansions={
                "zone": Expansion("Zone", "zoneUuid", "uuid"),
                "vmNics": Expansion("VmNic", "uuid", "vmInstanceUuid"),
            },
        )
    )
    registry.register(
        QueryableResource(
            name="VmNic",
            model=QVmNicVO,
            inventory=QVmNicInventory,
            expansions={
                "vmInstance": Expansion("VmInstance", "vmInstanceUuid", "uuid"),
                "eip": Expansion("Eip", "uuid", "vmNicUuid"),
            },
        )
    )
    registry.register(QueryableResource(name="Eip", model=QEipVO, inventory=QEipInventory))
    registry.register(
        QueryableResource(
            name="BackupStorage", model=QBackupStorageVO, inventory=QBackupStorageInventory
        )
    )
    registry.register(
        QueryableResource(
            name="BackupStorageZoneRef",
            model=QBackupStorageZoneRefVO,
            inventory=QBackupStorageZoneRefInventory,
            expansions={"backupStorage": Expansion("BackupStorage", "backupStorageUuid", "uuid")},
        )
    )
    registry.validate()
    return registry


INJECTION_NAME = "o'hara\"; DROP TABLE QZoneVO; --"


def _date(second: int) -> datetime:
    return datetime(2024, 1, 1, 0, 0, second)  # noqa: DTZ001 - stored dates are naive UTC


def _rows() -> list[QBase]:
    def zone(
        uuid: str, name: str, desc: str | None, state: str, default: bool, w: int, r: float
    ) -> QZoneVO:
        return QZoneVO(
            uuid=uuid,
            name=name,
            description=desc,
            state=state,
            is_default=default,
            weight=w,
            ratio=r,
            create_date=_date(int(uuid[1:])),
        )

    def vm(uuid: str, zone_uuid: str, host: str | None, cpus: int) -> QVmInstanceVO:
        return QVmInstanceVO(
            uuid=uuid, name=f"vm-{uuid[2:]}", zone_uuid=zone_uuid, host_uuid=host, cpu_num=cpus
        )

    # Weights chosen so that comparing them as text would give other answers (9 > 100).
    return [
        zone("z1", "zone-1", "first", "Enabled", True, 9, 0.5),
        zone("z2", "zone-2", None, "Disabled", False, 10, 1.5),
        zone("z3", "zone-3", "third", "Enabled", False, 100, 2.5),
        zone("z4", INJECTION_NAME, "fourth", "Enabled", False, 20, 0.25),
        vm("vm1", "z1", None, 2),
        vm("vm2", "z1", "h1", 4),
        vm("vm3", "z2", "h2", 8),
        QVmNicVO(uuid="nic1", vm_instance_uuid="vm1", ip="10.0.0.1"),
        QVmNicVO(uuid="nic2", vm_instance_uuid="vm1", ip="10.0.0.2"),
        QVmNicVO(uuid="nic3", vm_instance_uuid="vm2", ip="10.0.0.3"),
        QVmNicVO(uuid="nic4", vm_instance_uuid="vm3", ip="10.0.0.4"),
        # Three EIPs with the same VIP in zone 1: a JOIN would return z1 three times.
        QEipVO(uuid="eip1", vm_nic_uuid="nic1", vip_ip="16.16.16.16"),
        QEipVO(uuid="eip2", vm_nic_uuid="nic2", vip_ip="16.16.16.16"),
        QEipVO(uuid="eip3", vm_nic_uuid="nic3", vip_ip="16.16.16.16"),
        QEipVO(uuid="eip4", vm_nic_uuid="nic4", vip_ip="17.17.17.17"),
        QBackupStorageVO(uuid="bs1", name="bs-a"),
        QBackupStorageVO(uuid="bs2", name="bs-b"),
        QBackupStorageZoneRefVO(zone_uuid="z1", backup_storage_uuid="bs1"),
        QBackupStorageZoneRefVO(zone_uuid="z2", backup_storage_uuid="bs1"),
        QBackupStorageZoneRefVO(zone_uuid="z2", backup_storage_uuid="bs2"),
    ]


@pytest.fixture(
    params=[
        pytest.param("sqlite"),
        pytest.param("mariadb", marks=pytest.mark.real_server),
    ]
)
async def db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    if request.param == "sqlite":
        async with _loaded(f"sqlite+aiosqlite:///{tmp_path / 'query.db'}") as database:
            yield database
    else:
        async with fresh_mariadb() as url, _loaded(url) as database:
            yield database


@pytest.fixture
def registry() -> QueryRegistry:
    return make_registry()


@asynccontextmanager
async def _loaded(url: str) -> AsyncIterator[Database]:
    """A Database with the test tables created and filled; closed on exit."""
    db = Database(url)
    try:
        async with db.engine.begin() as conn:
            await conn.run_sync(QBase.metadata.create_all)
            await conn.run_sync(Base.metadata.tables["ResourceVO"].create)
        async with db.session() as session, session.begin():
            session.add_all(_rows())
            session.add_all(
                ResourceVO(uuid=uuid, resource_type="QZoneVO", account_uuid=account)
                for uuid, account in (
                    ("z1", ACCOUNT_A),
                    ("z2", ACCOUNT_A),
                    ("z3", ACCOUNT_B),
                    ("z4", ACCOUNT_B),
                )
            )
        yield db
    finally:
        await db.close()


async def query(
    db: Database,
    registry: QueryRegistry,
    *conditions: str,
    account_uuid: str | None = None,
    **params: Any,
) -> APIQueryReply:
    msg = QtQueryZoneMsg(conditions=[parse_rest_condition(c) for c in conditions], **params)
    return await run_query(db, registry, msg, account_uuid=account_uuid)


def uuids(reply: APIQueryReply) -> list[str]:
    assert reply.inventories is not None
    return [inv["uuid"] for inv in reply.inventories]


@contextmanager
def statements(db: Database) -> Iterator[list[str]]:
    """Record the SQL statements ``db`` runs inside the block."""
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    for engine in db.engines:
        event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        for engine in db.engines:
            event.remove(engine.sync_engine, "before_cursor_execute", record)


# ----- operators and typed values --------------------------------------------------------


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ("name=zone-1", ["z1"]),
        ("state!=Enabled", ["z2"]),
        ("weight>9", ["z2", "z3", "z4"]),
        ("weight<20", ["z1", "z2"]),
        ("weight>=20", ["z3", "z4"]),
        ("weight<=10", ["z1", "z2"]),
        ("uuid?=z1,z3,nope", ["z1", "z3"]),
        ("name!?=zone-1,zone-2", ["z3", "z4"]),
        ("name~=zone-%", ["z1", "z2", "z3"]),
        ("name~=zone-_", ["z1", "z2", "z3"]),
        ("name!~=zone-%", ["z4"]),
        ("description is null", ["z2"]),
        ("description not null", ["z1", "z3", "z4"]),
        ("isDefault=true", ["z1"]),
        ("isDefault=false", ["z2", "z3", "z4"]),
        ("ratio>=1.5", ["z2", "z3"]),
        ("ratio<0.5", ["z4"]),
        ("weight?=9,100", ["z1", "z3"]),
        ("createDate>2024-01-01T00:00:02", ["z3", "z4"]),
        ("createDate<=Jan 1, 2024 12:00:02 AM", ["z1", "z2"]),
        ("createDate=1704067203000", ["z3"]),  # epoch milliseconds, as Java clients send
        ("createDate~=2024-01-01%", ["z1", "z2", "z3", "z4"]),
    ],
)
async def test_operator(
    db: Database, registry: QueryRegistry, condition: str, expected: list[str]
) -> None:
    assert uuids(await query(db, registry, condition)) == expected


async def test_rpc_conditions_are_anded(db: Database, registry: QueryRegistry) -> None:
    msg = QtQueryZoneMsg(
        conditions=[
            QueryCondition(name="state", op="=", value="Enabled"),
            QueryCondition(name="weight", op="not in", value="100,20"),
            QueryCondition(name="uuid", op="is null"),
        ]
    )
    assert uuids(await run_query(db, registry, msg)) == []
    msg.conditions.pop()
    assert uuids(await run_query(db, registry, msg)) == ["z1"]


@pytest.mark.parametrize(
    ("condition", "expected_type"),
    [
        ("weight>abc", "integer"),
        ("weight?=1,x", "integer"),
        ("isDefault=maybe", "boolean"),
        ("ratio<=one", "number"),
        ("createDate>yesterday", "date-time"),
        ("vmInstance.cpuNum>lots", "integer"),
    ],
)
async def test_bad_value_names_field_and_type(
    db: Database, registry: QueryRegistry, condition: str, expected_type: str
) -> None:
    with pytest.raises(ZError) as err:
        await query(db, registry, condition)
    assert err.value.code == SysErr.INVALID_ARGUMENT
    assert err.value.details["field"] == parse_rest_condition(condition).name
    assert err.value.details["expectedType"] == expected_type


async def test_injection_looking_values_match_literally(
    db: Database, registry: QueryRegistry
) -> None:
    assert uuids(await query(db, registry, f"name={INJECTION_NAME}")) == ["z4"]
    assert uuids(await query(db, registry, "name=' OR '1'='1")) == []
    assert uuids(await query(db, registry, "uuid?=z1') OR ('1'='1,z2")) == ["z2"]
    assert uuids(await query(db, registry, "vmInstance.name=x' OR 1=1 --")) == []
    assert (await query(db, registry, count=True)).total == 4  # the table is still there


# ----- expanded (join) fields -------------------------------------------------------------


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ("vmInstance.name=vm-2", ["z1"]),  # 1 level
        ("vmInstance.cpuNum>=4", ["z1", "z2"]),
        ("vmInstance.hostUuid is null", ["z1"]),
        ("vmInstance.uuid not null", ["z1", "z2"]),
        ("vmInstance.vmNics.ip?=10.0.0.1,10.0.0.3", ["z1"]),  # 2 levels, 2 NICs match in z1
        ("vmInstance.vmNics.ip=10.0.0.4", ["z2"]),
        ("vmInstance.vmNics.eip.vipIp=16.16.16.16", ["z1"]),  # 3 levels, 3 EIPs match in z1
        ("vmInstance.vmNics.eip.vipIp=17.17.17.17", ["z2"]),
        ("vmInstance.vmNics.eip.vipIp~=1_.%", ["z1", "z2"]),
        ("vmInstance.vmNics.eip.vipIp=1.1.1.1", []),
        # Back onto tables already in the path: each level selects from its own FROM.
        ("vmInstance.vmNics.vmInstance.hostUuid=h2", ["z2"]),
        ("vmInstance.zone.vmInstance.zone.name=zone-1", ["z1"]),
    ],
)
async def test_expanded_field(
    db: Database, registry: QueryRegistry, condition: str, expected: list[str]
) -> None:
    reply = await query(db, registry, condition, reply_with_count=True)
    assert uuids(reply) == expected
    assert reply.total == len(expected)


async def test_seed_example_is_one_statement_without_duplicates(
    db: Database, registry: QueryRegistry
) -> None:
    with statements(db) as seen:
        reply = await query(db, registry, "vmInstance.vmNics.eip.vipIp=16.16.16.16")
    assert uuids(reply) == ["z1"]
    assert len([s for s in seen if s.lstrip().upper().startswith("SELECT")]) == 1
    assert "JOIN" not in seen[-1].upper()
    with statements(db) as seen:
        reply = await query(
            db, registry, "vmInstance.vmNics.eip.vipIp=16.16.16.16", reply_with_count=True
        )
    assert (uuids(reply), reply.total) == (["z1"], 1)
    assert len([s for s in seen if s.lstrip().upper().startswith("SELECT")]) == 2


async def test_expanded_and_native_conditions_combine(
    db: Database, registry: QueryRegistry
) -> None:
    both = ("state=Enabled", "vmInstance.vmNics.eip.vipIp=17.17.17.17")
    assert uuids(await query(db, registry, *both)) == []
    both = ("state=Disabled", "vmInstance.vmNics.eip.vipIp=17.17.17.17")
    assert uuids(await query(db, registry, *both)) == ["z2"]
    # Independent semi-joins: the two VMs matched need not be the same VM.
    assert uuids(await query(db, registry, "vmInstance.name=vm-1", "vmInstance.cpuNum=4")) == ["z1"]


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ("backupStorage.name=bs-a", ["z1", "z2"]),
        ("backupStorage.name=bs-b", ["z2"]),
        ("backupStorage.uuid!=bs1", ["z2"]),
        ("backupStorageRef.backupStorage.name=bs-b", ["z2"]),  # the hidden edge, spelled out
        ("backupStorageRef.backupStorageUuid=bs1", ["z1", "z2"]),
    ],
)
async def test_alias(
    db: Database, registry: QueryRegistry, condition: str, expected: list[str]
) -> None:
    assert uuids(await query(db, registry, condition)) == expected


# ----- paging, count, sort, projection ------------------------------------------------------


async def test_paging_and_counts(db: Database, registry: QueryRegistry) -> None:
    assert uuids(await query(db, registry, limit=2)) == ["z1", "z2"]
    page = await query(db, registry, limit=2, start=2, reply_with_count=True)
    assert (uuids(page), page.total) == (["z3", "z4"], 4)
    assert uuids(await query(db, registry, limit=2, start=4)) == []
    assert uuids(await query(db, registry, limit=0)) == []
    only = await query(db, registry, "state=Enabled", count=True, reply_with_count=True)
    assert (only.inventories, only.total) == (None, 3)
    assert only.body() == {"total": 3}
    plain = await query(db, registry, "state=Enabled")
    assert plain.total is None
    assert "total" not in plain.body()


@pytest.mark.parametrize(
    ("sort_by", "direction", "expected"),
    [
        ("weight", "desc", ["z3", "z4", "z2", "z1"]),
        ("weight", "asc", ["z1", "z2", "z4", "z3"]),
        ("uuid", "desc", ["z4", "z3", "z2", "z1"]),
        ("state", "asc", ["z2", "z1", "z3", "z4"]),  # ties broken by uuid
        ("createDate", "desc", ["z4", "z3", "z2", "z1"]),
    ],
)
async def test_sort(
    db: Database, registry: QueryRegistry, sort_by: str, direction: str, expected: list[str]
) -> None:
    reply = await query(db, registry, sort_by=sort_by, sort_direction=direction)
    assert uuids(reply) == expected


async def test_inventories_are_wire_json(db: Database, registry: QueryRegistry) -> None:
    reply = await query(db, registry, "uuid=z1")
    assert reply.inventories == [
        {
            "uuid": "z1",
            "name": "zone-1",
            "description": "first",
            "state": "Enabled",
            "isDefault": True,
            "weight": 9,
            "ratio": 0.5,
            "createDate": "Jan 1, 2024 12:00:01 AM",
        }
    ]


async def test_fields_projection(db: Database, registry: QueryRegistry) -> None:
    reply = await query(db, registry, "weight>10", fields=["uuid", "isDefault"])
    assert reply.inventories == [
        {"uuid": "z3", "isDefault": False},
        {"uuid": "z4", "isDefault": False},
    ]
    reply = await query(db, registry, "uuid=z1", fields=["name,createDate"])
    assert reply.inventories == [{"name": "zone-1", "createDate": "Jan 1, 2024 12:00:01 AM"}]


# ----- ownership ----------------------------------------------------------------------------


async def test_account_sees_only_its_rows(db: Database, registry: QueryRegistry) -> None:
    assert uuids(await query(db, registry, account_uuid=ACCOUNT_A)) == ["z1", "z2"]
    assert uuids(await query(db, registry, account_uuid=ACCOUNT_B)) == ["z3", "z4"]
    assert uuids(await query(db, registry, "uuid=z1", account_uuid=ACCOUNT_B)) == []
    counted = await query(db, registry, "state=Enabled", account_uuid=ACCOUNT_B, count=True)
    assert counted.total == 2
    assert uuids(await query(db, registry, account_uuid="c" * 32)) == []
    nested = "vmInstance.vmNics.eip.vipIp=16.16.16.16"
    assert uuids(await query(db, registry, nested, account_uuid=ACCOUNT_B)) == []
    assert uuids(await query(db, registry, nested, account_uuid=ACCOUNT_A)) == ["z1"]


# ----- errors ---------------------------------------------------------------------------------


async def test_unknown_field_lists_valid_fields(db: Database, registry: QueryRegistry) -> None:
    with pytest.raises(ZError) as err:
        await query(db, registry, "nmae=zone-1")
    assert err.value.code == SysErr.INVALID_ARGUMENT
    assert err.value.details["field"] == "nmae"
    assert err.value.details["validFields"] == [
        "backupStorage",
        "createDate",
        "description",
        "isDefault",
        "name",
        "ratio",
        "state",
        "uuid",
        "vmInstance",
        "weight",
    ]


@pytest.mark.parametrize(
    ("condition", "field", "valid_contains"),
    [
        ("vmInstance.nope=1", "vmInstance.nope", "cpuNum"),
        ("vmInstance.vmNics.eip.nope=1", "vmInstance.vmNics.eip.nope", "vipIp"),
        ("nope.name=1", "nope", "vmInstance"),
        ("vmInstance.nope.name=1", "nope", "vmNics"),
        ("vmInstance=1", "vmInstance", "vmInstance"),  # an edge is not a value field
    ],
)
async def test_unknown_nested_field(
    db: Database, registry: QueryRegistry, condition: str, field: str, valid_contains: str
) -> None:
    with pytest.raises(ZError) as err:
        await query(db, registry, condition)
    assert err.value.code == SysErr.INVALID_ARGUMENT
    assert err.value.details["field"] == field
    assert valid_contains in err.value.details["validFields"]


async def test_unknown_operator(db: Database, registry: QueryRegistry) -> None:
    msg = QtQueryZoneMsg(conditions=[QueryCondition(name="name", op="==", value="x")])
    with pytest.raises(ZError) as err:
        await run_query(db, registry, msg)
    assert err.value.code == SysErr.INVALID_ARGUMENT
    assert "not in" in err.value.details["validOperators"]
    missing = QtQueryZoneMsg(conditions=[QueryCondition(name="name", op="=")])
    with pytest.raises(ZError) as err:
        await run_query(db, registry, missing)
    assert err.value.code == SysErr.INVALID_ARGUMENT


async def test_unknown_sort_or_projection(db: Database, registry: QueryRegistry) -> None:
    with statements(db) as seen, pytest.raises(ZError) as err:
        await query(db, registry, sort_by="vmInstance", reply_with_count=True)
    assert seen == []  # refused before any SQL
    assert err.value.code == SysErr.INVALID_ARGUMENT
    assert "weight" in err.value.details["validFields"]
    assert "vmInstance" not in err.value.details["validFields"]
    with pytest.raises(ZError) as err:
        await query(db, registry, fields=["uuid", "vmInstance.name"])
    assert err.value.code == SysErr.INVALID_ARGUMENT
    assert err.value.details["field"] == "vmInstance.name"
    assert "uuid" in err.value.details["validFields"]


async def test_unknown_resource(db: Database, registry: QueryRegistry) -> None:
    with pytest.raises(ZError) as err:
        await run_query(db, registry, QtQueryZoneMsg(), resource="Nope")
    assert err.value.code == SysErr.INVALID_ARGUMENT
    assert "Zone" in err.value.details["validResources"]


# ----- extension points -----------------------------------------------------------------------


async def test_pseudo_field_plugs_in(db: Database, registry: QueryRegistry) -> None:
    """How the tag service will hook in: a builder turns the condition into SQL."""

    def tagged(ctx: PseudoFieldContext, condition: QueryCondition) -> Any:
        assert ctx.resource.name == "Zone"
        column = ctx.compiled.uuid_column
        assert column is not None
        tags = select(QVmInstanceVO.zone_uuid).where(QVmInstanceVO.host_uuid == condition.value)
        return column.in_(tags)

    registry.register_pseudo_field("__systemTag__", tagged)
    assert uuids(await query(db, registry, "__systemTag__=h2")) == ["z2"]
    with pytest.raises(ZError) as err:
        await query(db, registry, "nope=1")
    assert "__systemTag__" in err.value.details["validFields"]


async def test_query_other_resource(db: Database, registry: QueryRegistry) -> None:
    msg = QtQueryZoneMsg(
        conditions=[parse_rest_condition("vmNics.eip.vipIp=16.16.16.16")],
        sort_by="cpuNum",
        sort_direction="desc",
    )
    reply = await run_query(db, registry, msg, resource="VmInstance")
    assert uuids(reply) == ["vm2", "vm1"]
    refs = await run_query(db, registry, QtQueryZoneMsg(), resource="BackupStorageZoneRef")
    assert refs.inventories is not None
    assert [r["backupStorageUuid"] for r in refs.inventories] == ["bs1", "bs1", "bs2"]


async def test_row_deleted_while_it_was_read_is_left_out(
    db: Database, registry: QueryRegistry
) -> None:
    """A hook answering None (its related row was deleted after the row query ran: reads
    run in autocommit, each statement sees the last commit) drops that row, not the query."""
    registry.register(
        QueryableResource(
            name="HalfGoneZone",
            model=QZoneVO,
            inventory=QZoneInventory,
            to_inventory=lambda row: (
                None
                if row.uuid == "z2"
                else QZoneInventory.model_validate(row, from_attributes=True)
            ),
        )
    )
    reply = await run_query(db, registry, QtQueryZoneMsg(), resource="HalfGoneZone")
    assert uuids(reply) == ["z1", "z3", "z4"]
