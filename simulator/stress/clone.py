"""Copying a resource's rows in bulk: the rows the API wrote for one template resource,
written again for many new ones with their own identities.

A resource's rows are found, not listed: every row of any table with a column equal to one
of the resource's uuids, then the rows pointing at those rows' own uuids, until nothing new
turns up (a VM -> its NICs and root volume -> the NICs' used IPs, each one's ResourceVO
row). References *out* of the closure (a VM's host, L3 network, image) are not followed:
a copy points at the same ones unless ``Identity.uuids`` maps them elsewhere. Tables that
record API activity rather than resources (``SKIPPED_TABLES``) are left out.

Every value of a copied row is rewritten by the copy's ``Identity``: a value equal to an
old uuid or identity string becomes the new one, a string containing one has it replaced
(an install path holds its volume's uuid, a root volume's name its VM's name), integers
of the named columns are mapped, dates become now. What the copies must not share
(addresses, MACs, tokens) is the caller's to generate.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Column, MetaData, String, Table, Text, insert, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

# API jobs, sessions, events: records of what was called, which a bulk path does not call.
SKIPPED_TABLES = frozenset({"ApiJobVO", "SessionVO", "alembic_version"})


@dataclass
class Identity:
    """What one copy changes: ``uuids`` and ``strings`` old -> new (exact values and inside
    longer strings), ``ints`` by column name old -> new."""

    uuids: dict[str, str] = field(default_factory=dict)
    strings: dict[str, str] = field(default_factory=dict)
    ints: dict[str, dict[int, int]] = field(default_factory=dict)

    def keys(self) -> list[str]:
        """The old strings and uuids, longest first: a name that contains another one is
        replaced whole."""
        return sorted({*self.uuids, *self.strings}, key=len, reverse=True)

    def new_values(self) -> dict[str, str]:
        return {**self.strings, **self.uuids}

    def rewrite(self, column: str, value: Any, now: dt.datetime) -> Any:
        """One value of a template row as this copy has it (a value outside the template's
        rows: a copy's own file names; the rows themselves go through ``copies``)."""
        # Only this column's int mapping matters, and its keys are a view, not a copy.
        ints = {column: self.ints[column].keys()} if column in self.ints else {}
        cell = _compile_cell(column, value, self.keys(), ints)
        return _render(cell, column, self, self.new_values(), now)


@dataclass
class TemplateRows:
    """The closure of one template resource: rows by table, and every uuid they own."""

    rows: dict[str, list[dict[str, Any]]]
    uuids: set[str]

    def values(self, table: str, column: str) -> list[Any]:
        return [row[column] for row in self.rows.get(table, [])]

    def one(self, table: str, column: str) -> Any:
        values = self.values(table, column)
        if len(values) != 1:
            raise ValueError(f"the template has {len(values)} {table} rows, not one")
        return values[0]


async def reflect(conn: AsyncConnection) -> MetaData:
    metadata = MetaData()
    await conn.run_sync(metadata.reflect)
    return metadata


def _text_columns(table: Table) -> list[Column[Any]]:
    return [c for c in table.columns if isinstance(c.type, String | Text)]


async def template_rows(conn: AsyncConnection, metadata: MetaData, root_uuid: str) -> TemplateRows:
    """Every row that belongs to the resource ``root_uuid`` (see the module's doc)."""
    owned = {root_uuid}
    frontier = {root_uuid}
    rows: dict[str, dict[tuple[Any, ...], dict[str, Any]]] = {}
    while frontier:
        found: set[str] = set()
        for table in metadata.sorted_tables:
            if table.name in SKIPPED_TABLES:
                continue
            columns = _text_columns(table)
            if not columns:
                continue
            stmt = select(table).where(or_(*(c.in_(sorted(frontier)) for c in columns)))
            for row in (await conn.execute(stmt)).mappings():
                key = tuple(row[c.name] for c in table.primary_key.columns) or tuple(row.values())
                rows.setdefault(table.name, {})[key] = dict(row)
                own = row.get("uuid")
                if isinstance(own, str) and own not in owned:
                    found.add(own)
        owned |= found
        frontier = found
    return TemplateRows({name: list(by_key.values()) for name, by_key in rows.items()}, owned)


# How one template cell becomes a copy's: kept as it is, replaced whole (a key), rebuilt
# from literal pieces and keys, an integer mapped, or the copy's date.
_Cell = tuple[str, Any]


def _compile_cell(
    column: str, value: Any, keys: list[str], ints: Mapping[str, Collection[int]]
) -> _Cell:
    if isinstance(value, str):
        if value in keys:
            return ("key", value)
        found = [k for k in keys if k in value]  # keys are longest first
        if not found:
            return ("const", value)
        pieces: list[tuple[bool, str]] = []  # (is a key, text)
        rest = value
        while rest:
            hits = [(rest.find(k), k) for k in found if k in rest]
            if not hits:
                pieces.append((False, rest))
                break
            at, key = min(hits, key=lambda hit: (hit[0], -len(hit[1])))
            if at:
                pieces.append((False, rest[:at]))
            pieces.append((True, key))
            rest = rest[at + len(key) :]
        return ("parts", pieces)
    if isinstance(value, int) and not isinstance(value, bool) and value in ints.get(column, ()):
        return ("int", value)
    if isinstance(value, dt.datetime):
        return ("date", None)
    return ("const", value)


def _render(
    cell: _Cell, column: str, identity: Identity, new: dict[str, str], now: dt.datetime
) -> Any:
    kind, payload = cell
    if kind == "const":
        return payload
    if kind == "key":
        return new[payload]
    if kind == "parts":
        return "".join(new[text] if is_key else text for is_key, text in payload)
    if kind == "int":
        return identity.ints[column][payload]
    return now


def copies(
    template: TemplateRows, identities: Sequence[Identity], now: dt.datetime
) -> dict[str, list[dict[str, Any]]]:
    """The rows of every copy, by table. Every identity must map the same old values
    (the template's): how each cell changes is worked out once, then applied per copy."""
    out: dict[str, list[dict[str, Any]]] = {name: [] for name in template.rows}
    if not identities:
        return out
    first = identities[0]
    keys = first.keys()
    ints = {column: set(mapping) for column, mapping in first.ints.items()}
    plans = [
        (name, [(c, _compile_cell(c, v, keys, ints)) for c, v in row.items()])
        for name, rows in template.rows.items()
        for row in rows
    ]
    for identity in identities:
        new = identity.new_values()
        for name, plan in plans:
            out[name].append({c: _render(cell, c, identity, new, now) for c, cell in plan})
    return out


async def insert_rows(
    conn: AsyncConnection,
    metadata: MetaData,
    rows: dict[str, list[dict[str, Any]]],
    batch: int = 5000,
) -> int:
    """Insert in the tables' dependency order, ``batch`` rows per statement."""
    written = 0
    for table in metadata.sorted_tables:
        table_rows = rows.get(table.name)
        if not table_rows:
            continue
        for start in range(0, len(table_rows), batch):
            chunk = table_rows[start : start + batch]
            await conn.execute(insert(table), chunk)
            written += len(chunk)
    return written


def new_uuids(template: TemplateRows, count: int) -> Iterable[dict[str, str]]:
    """For each copy, a fresh uuid for every uuid the template owns (ZStack's form:
    32 hex digits, no dashes)."""
    for _ in range(count):
        yield {old: uuid.uuid4().hex for old in template.uuids}
