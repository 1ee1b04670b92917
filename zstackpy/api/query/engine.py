"""run_query: an APIQueryMessage in, one SELECT (plus one COUNT when asked) out.

Conditions are ANDed. A plain field compares a column of the queried table; a path
``a.b.c`` walks join edges and becomes nested ``IN (SELECT ...)`` semi-joins, so a resource
matches when *some* joined row does and is never returned twice. Every value is a bound
parameter built through SQLAlchemy expressions.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import ColumnElement, Select, String, bindparam, exists, func, select

from zstackpy.api.messages import APIQueryMessage, APIQueryReply, Inventory, QueryCondition
from zstackpy.api.query.registry import (
    CompiledResource,
    NativeField,
    PseudoFieldContext,
    QueryableResource,
    QueryRegistry,
)
from zstackpy.api.query.syntax import (
    ALL_OPERATORS,
    EQ,
    GE,
    GT,
    IN,
    IS_NOT_NULL,
    IS_NULL,
    LE,
    LIKE,
    LT,
    NE,
    NOT_IN,
    NOT_LIKE,
)
from zstackpy.core.db.engine import Database
from zstackpy.core.db.models import ResourceVO
from zstackpy.core.errors import SysErr, ZError

_Compare = Callable[[ColumnElement[Any], Any], ColumnElement[bool]]

_COMPARISONS: dict[str, _Compare] = {
    EQ: lambda c, v: c == v,
    NE: lambda c, v: c != v,
    GT: lambda c, v: c > v,
    LT: lambda c, v: c < v,
    GE: lambda c, v: c >= v,
    LE: lambda c, v: c <= v,
}


async def run_query(
    db: Database,
    registry: QueryRegistry,
    msg: APIQueryMessage,
    *,
    resource: str | None = None,
    account_uuid: str | None = None,
) -> APIQueryReply:
    """Answer ``msg`` from the database.

    ``resource`` defaults to the message's ``query_of``; ``account_uuid`` None means an admin
    (every row), otherwise only rows the account owns (a ResourceVO row with its uuid). Bad
    fields, operators, values, sorts or projections raise ZError SYS.1007 before any SQL.
    """
    name = resource or type(msg).query_of
    queried = registry.get(name)
    compiled = registry.compiled(name)

    where = [_condition(registry, queried, compiled, c) for c in msg.conditions]
    if account_uuid is not None:
        where.append(_owned_by(queried, compiled, account_uuid))

    # Everything a client can get wrong is checked here, before any SQL runs.
    rows_stmt: Select[Any] | None = None
    include: set[str] | None = None
    if not msg.count:
        include = _projection(compiled, msg.fields)
        rows_stmt = _rows_statement(queried, compiled, msg).where(*where)

    total: int | None = None
    inventories: list[dict[str, Any]] | None = None
    async with db.read_session() as session:
        if msg.count or msg.reply_with_count:
            count_stmt = select(func.count()).select_from(queried.model).where(*where)
            total = int((await session.execute(count_stmt)).scalar_one())
        if rows_stmt is not None:
            rows = (await session.execute(rows_stmt)).scalars().all()
            to_inventory = queried.to_inventory or _default_to_inventory(queried.inventory)
            built = (to_inventory(row) for row in rows)
            inventories = [
                inventory.model_dump(mode="json", by_alias=True, include=include)
                for inventory in built
                if inventory is not None  # deleted while it was read
            ]
    return APIQueryReply(inventories=inventories, total=total)


def _default_to_inventory(inventory: type[Inventory]) -> Callable[[Any], Inventory]:
    def build(row: Any) -> Inventory:
        return inventory.model_validate(row, from_attributes=True)

    return build


def _rows_statement(
    queried: QueryableResource, compiled: CompiledResource, msg: APIQueryMessage
) -> Select[Any]:
    stmt: Select[Any] = select(queried.model)
    if queried.load_options:
        stmt = stmt.options(*queried.load_options)
    if msg.sort_by:
        sorted_field = compiled.fields.get(msg.sort_by)
        if sorted_field is None:
            raise _invalid_field(
                msg.sort_by, sorted(compiled.fields), f"cannot sort by {msg.sort_by!r}"
            )
        column = sorted_field.column
        key = column.desc() if msg.sort_direction == "desc" else column.asc()
        # The tiebreak keeps pages stable when many rows share the sort value.
        stmt = stmt.order_by(key, *(c for c in compiled.tiebreak if c is not column))
    else:
        stmt = stmt.order_by(*compiled.default_order)
    return stmt.limit(msg.limit).offset(msg.start)


def _projection(compiled: CompiledResource, fields: list[str]) -> set[str] | None:
    """The python field names to dump, or None for all. Accepts ``a,b`` items too."""
    if not fields:
        return None
    include: set[str] = set()
    for item in fields:
        for wire_name in item.split(","):
            wire_name = wire_name.strip()
            if not wire_name:
                continue
            python_name = compiled.inventory_fields.get(wire_name)
            if python_name is None:
                raise _invalid_field(
                    wire_name, sorted(compiled.inventory_fields), f"no field {wire_name!r}"
                )
            include.add(python_name)
    return include or None


def _owned_by(
    queried: QueryableResource, compiled: CompiledResource, account_uuid: str
) -> ColumnElement[bool]:
    if compiled.uuid_column is None:
        raise ZError(
            SysErr.OPERATION,
            f"{queried.name} has no uuid, so only an admin may query it",
            resource=queried.name,
        )
    return exists().where(
        ResourceVO.uuid == compiled.uuid_column, ResourceVO.account_uuid == account_uuid
    )


def _condition(
    registry: QueryRegistry,
    queried: QueryableResource,
    compiled: CompiledResource,
    condition: QueryCondition,
) -> ColumnElement[bool]:
    if condition.op not in ALL_OPERATORS:
        raise ZError(
            SysErr.INVALID_ARGUMENT,
            f"unknown query operator {condition.op!r} on {condition.name!r}",
            field=condition.name,
            op=condition.op,
            validOperators=list(ALL_OPERATORS),
        )
    name = condition.name
    builder = registry.pseudo_field(name)
    if builder is not None:
        return builder(PseudoFieldContext(queried, compiled), condition)
    if "." not in name:
        native = compiled.fields.get(name)
        if native is None:
            raise _invalid_field(name, list(compiled.valid_fields), f"no field {name!r}")
        return _compare(native, condition)

    *path, last = name.split(".")
    edges, reached = registry.resolve_edges(queried.name, path)
    target = registry.compiled(reached)
    native = target.fields.get(last)
    if native is None:
        raise _invalid_field(
            name,
            sorted(target.fields),
            f"{reached} has no field {last!r}",
            resource=reached,
        )
    # Innermost first: the target rows matching the condition, then one IN per edge back
    # towards the queried resource. correlate(None): a subquery over the same table as an
    # enclosing query must still select from its own FROM, not the outer row.
    clause = _compare(native, condition)
    for source, edge in reversed(edges):
        target_key = registry.compiled(edge.target).fields[edge.target_key].column
        this_key = registry.compiled(source).fields[edge.this_key].column
        clause = this_key.in_(select(target_key).where(clause).correlate(None))
    return clause


def _compare(native: NativeField, condition: QueryCondition) -> ColumnElement[bool]:
    op, column, value = condition.op, native.column, condition.value
    if op == IS_NULL:
        return column.is_(None)
    if op == IS_NOT_NULL:
        return column.is_not(None)
    if value is None:
        raise ZError(
            SysErr.INVALID_ARGUMENT,
            f"query operator {op!r} on {condition.name!r} needs a value",
            field=condition.name,
            op=op,
        )
    if op in (LIKE, NOT_LIKE):
        # A pattern is text whatever the column's type: typed String so no type's bind
        # processor (DateTime on SQLite) rejects it.
        pattern = bindparam(None, value, type_=String())
        text = native.as_text
        return text.like(pattern) if op == LIKE else text.not_like(pattern)
    if op in (IN, NOT_IN):
        values = [_convert(native, condition, item) for item in value.split(",")]
        return column.in_(values) if op == IN else column.not_in(values)
    return _COMPARISONS[op](column, _convert(native, condition, value))


def _convert(native: NativeField, condition: QueryCondition, value: str) -> Any:
    try:
        return native.convert(value)
    except (ValueError, OverflowError):
        raise ZError(
            SysErr.INVALID_ARGUMENT,
            f"{condition.name!r} takes a {native.type_name} value, not {value!r}",
            field=condition.name,
            value=value,
            expectedType=native.type_name,
        ) from None


def _invalid_field(name: str, valid: list[str], description: str, **details: Any) -> ZError:
    return ZError(SysErr.INVALID_ARGUMENT, description, field=name, validFields=valid, **details)
