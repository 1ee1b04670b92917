"""The query registry: field maps, start-up validation, and value conversion (no SQL run)."""

from __future__ import annotations

import enum
from datetime import datetime
from decimal import Decimal
from typing import Any

import pytest
from pydantic import Field
from sqlalchemy import Boolean, DateTime, Enum, Integer, Numeric, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.sql.type_api import TypeEngine

from zstackpy.api.messages import Inventory
from zstackpy.api.query import Expansion, QueryableResource, QueryRegistry
from zstackpy.api.query.values import converter_for
from zstackpy.core.errors import SysErr, ZError


class RBase(DeclarativeBase):
    pass


class RHostVO(RBase):
    __tablename__ = "RHostVO"
    uuid: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    cluster_uuid: Mapped[str] = mapped_column(String(32))
    management_ip: Mapped[str] = mapped_column(String(64))
    create_date: Mapped[datetime] = mapped_column(DateTime)


class RClusterVO(RBase):
    __tablename__ = "RClusterVO"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uuid_text: Mapped[str] = mapped_column(String(32))


class RHostInventory(Inventory):
    uuid: str
    name: str
    cluster_uuid: str
    management_ip: str
    create_date: datetime
    vm_uuids: list[str] = Field(default_factory=list)  # no column: returned, not queryable


class RClusterInventory(Inventory):
    id: int
    uuid: str


def host(**kwargs: Any) -> QueryableResource:
    return QueryableResource(name="Host", model=RHostVO, inventory=RHostInventory, **kwargs)


def cluster(**kwargs: Any) -> QueryableResource:
    return QueryableResource(
        name="Cluster",
        model=RClusterVO,
        inventory=RClusterInventory,
        columns={"uuid": RClusterVO.uuid_text.expression},
        **kwargs,
    )


def test_fields_come_from_inventory_and_model() -> None:
    registry = QueryRegistry()
    registry.register(
        host(
            expansions={
                "cluster": Expansion("Cluster", "clusterUuid", "uuid"),
                "hiddenRef": Expansion("Cluster", "clusterUuid", "uuid", hidden=True),
            },
            aliases={"shortcut": "hiddenRef"},
        )
    )
    registry.register(cluster())
    registry.validate()
    compiled = registry.compiled("Host")
    assert sorted(compiled.fields) == ["clusterUuid", "createDate", "managementIp", "name", "uuid"]
    assert compiled.inventory_fields["vmUuids"] == "vm_uuids"
    assert compiled.valid_fields == (
        "cluster",
        "clusterUuid",
        "createDate",
        "managementIp",
        "name",
        "shortcut",
        "uuid",
    )
    assert [str(c) for c in compiled.default_order] == ["RHostVO.create_date", "RHostVO.uuid"]
    # A column override maps a wire name onto another attribute; no uuid -> order by key.
    clusters = registry.compiled("Cluster")
    assert str(clusters.fields["uuid"].column) == "RClusterVO.uuid_text"
    assert [str(c) for c in clusters.default_order] == ["RClusterVO.id"]
    assert clusters.uuid_column is None
    assert registry.names() == ["Cluster", "Host"]


def test_resolve_edges_through_aliases() -> None:
    registry = QueryRegistry()
    registry.register(host(aliases={"c": "c2", "c2": "cluster"}))
    registry.add_expansion("Host", "cluster", Expansion("Cluster", "clusterUuid", "uuid"))
    registry.register(cluster(expansions={"host": Expansion("Host", "uuid", "clusterUuid")}))
    edges, reached = registry.resolve_edges("Host", ["c", "host", "cluster"])
    assert reached == "Cluster"
    assert [(src, e.target) for src, e in edges] == [
        ("Host", "Cluster"),
        ("Cluster", "Host"),
        ("Host", "Cluster"),
    ]


def test_validate_reports_every_problem() -> None:
    registry = QueryRegistry()
    registry.register(
        host(
            expansions={
                "zone": Expansion("Zone", "zoneUuid", "uuid"),
                "cluster": Expansion("Cluster", "clusterUuid", "nope"),
            },
            aliases={"loop": "loop", "bad": "zone.nothing"},
        )
    )
    registry.register(cluster())
    with pytest.raises(ZError) as err:
        registry.validate()
    assert err.value.code == SysErr.INTERNAL
    problems = "\n".join(err.value.details["problems"])
    assert "Host.zone: 'zoneUuid' is not a column field" in problems
    assert "Host.zone: target 'Zone' is not registered" in problems
    assert "Host.cluster: Cluster.nope is not a column field" in problems
    assert "Host.loop" in problems
    assert "Host.bad" in problems


def test_register_twice_and_unknown_resource() -> None:
    registry = QueryRegistry()
    registry.register(host())
    with pytest.raises(ZError) as err:
        registry.register(host())
    assert err.value.code == SysErr.INTERNAL
    with pytest.raises(ZError) as err:
        registry.get("Zone")
    assert err.value.code == SysErr.INVALID_ARGUMENT
    assert err.value.details["validResources"] == ["Host"]


class Color(enum.Enum):
    RED = "red"


@pytest.mark.parametrize(
    ("sql_type", "text", "expected", "type_name"),
    [
        (Integer(), " 42", 42, "integer"),
        (Boolean(), "TRUE", True, "boolean"),
        (Boolean(), "0", False, "boolean"),
        (Numeric(), "1.50", Decimal("1.50"), "number"),
        (String(), " as is ", " as is ", "string"),
        (DateTime(), "2017-01-06T03:51:16", datetime(2017, 1, 6, 3, 51, 16), "date-time"),  # noqa: DTZ001
        (DateTime(), "2017-01-06T04:51:16+01:00", datetime(2017, 1, 6, 3, 51, 16), "date-time"),  # noqa: DTZ001
        (DateTime(), "Jan 6, 2017 3:51:16 AM", datetime(2017, 1, 6, 3, 51, 16), "date-time"),  # noqa: DTZ001
        (DateTime(), "1483674676000", datetime(2017, 1, 6, 3, 51, 16), "date-time"),  # noqa: DTZ001
        (Enum(Color), "red", Color.RED, "one of RED"),
        (Enum(Color), "RED", Color.RED, "one of RED"),
    ],
)
def test_converters(sql_type: TypeEngine[Any], text: str, expected: Any, type_name: str) -> None:
    convert, name = converter_for(sql_type)
    assert convert(text) == expected
    assert name == type_name


@pytest.mark.parametrize(
    ("sql_type", "text"),
    [
        (Integer(), "1.5"),
        (Boolean(), "maybe"),
        (Numeric(), "x"),
        (DateTime(), "yesterday"),
        (Enum(Color), "blue"),
    ],
)
def test_converters_refuse(sql_type: TypeEngine[Any], text: str) -> None:
    convert, _ = converter_for(sql_type)
    with pytest.raises(ValueError):  # noqa: PT011 - the engine re-raises it as SYS.1007
        convert(text)
