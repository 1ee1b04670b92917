"""What can be queried: each resource's fields, its join edges, and the tag pseudo-fields.

Services register a QueryableResource per inventory at start-up; the node calls validate()
once all are in, so a join to an unknown resource fails the start, not the first query.
Everything a query needs per resource (wire field -> column and value converter, the valid
field lists, the default order) is computed here once, so run_query only does dict lookups.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, String, cast, inspect
from sqlalchemy.orm import ColumnProperty, DeclarativeBase
from sqlalchemy.orm.interfaces import ORMOption

from zstackpy.api.messages import Inventory, QueryCondition
from zstackpy.api.query.values import Converter, converter_for
from zstackpy.core.errors import SysErr, ZError

# An alias may name another alias; deeper than this is a cycle.
MAX_ALIAS_DEPTH = 8


@dataclass(frozen=True)
class Expansion:
    """ZStack's @ExpandedQuery: ``this.<this_key> = <target>.<target_key>`` (wire names).

    ``hidden`` edges (ref tables) stay usable in paths and aliases but are not listed among a
    resource's valid fields, as ZStack hides them from clients.
    """

    target: str
    this_key: str
    target_key: str
    hidden: bool = False


@dataclass
class QueryableResource:
    """One queryable resource type, registered by the service that owns it.

    The inventory's fields (wire names) are the resource's native fields; a field is
    queryable when ``columns`` maps it or the model has a column attribute of the same
    Python name. Fields without a column (nested lists) are returned but not queryable.
    ``to_inventory`` builds the inventory from a loaded model row when the default
    ``inventory.model_validate(row, from_attributes=True)`` does not fit; ``load_options``
    (e.g. ``selectinload(VmInstanceVO.vm_nics)``) are applied to the row query so such a
    hook finds nested rows loaded in one extra statement per relation, not one per row.
    Those statements may see a later commit than the row query's (reads run in autocommit):
    a hook whose row needs a related row that was deleted meanwhile answers None, and the
    row, gone by then, is left out of the answer.
    """

    name: str
    model: type[DeclarativeBase]
    inventory: type[Inventory]
    expansions: dict[str, Expansion] = field(default_factory=dict)
    aliases: dict[str, str] = field(default_factory=dict)
    columns: dict[str, ColumnElement[Any]] | None = None
    to_inventory: Callable[[Any], Inventory | None] | None = None
    load_options: Sequence[ORMOption] = ()


@dataclass(frozen=True, slots=True)
class NativeField:
    """A queryable native field: where it lives and how its values are converted."""

    wire_name: str
    python_name: str
    column: ColumnElement[Any]
    convert: Converter
    type_name: str
    # What like/not like match: the column itself, or its text form for non-text columns
    # (SQLAlchemy refuses LIKE on a DateTime; both databases compare the CAST fine).
    as_text: ColumnElement[Any]


class PseudoFieldContext:
    """What a pseudo-field builder gets: the queried resource, its compiled fields."""

    __slots__ = ("compiled", "resource")

    def __init__(self, resource: QueryableResource, compiled: CompiledResource) -> None:
        self.resource = resource
        self.compiled = compiled


# Builds the WHERE clause for a pseudo-field condition (``__systemTag__=hostname::vm1``),
# e.g. ``uuid IN (SELECT resource_uuid FROM SystemTagVO WHERE tag ...)``. Raise ZError
# SYS.1007 for an op or value it does not support.
PseudoFieldBuilder = Callable[[PseudoFieldContext, QueryCondition], ColumnElement[bool]]


@dataclass(frozen=True, slots=True)
class CompiledResource:
    """The per-resource lookups run_query uses, computed once at registration."""

    fields: dict[str, NativeField]  # queryable native fields by wire name
    inventory_fields: dict[str, str]  # every inventory field: wire name -> python name
    valid_fields: tuple[str, ...]  # what a condition may name (errors list it)
    default_order: tuple[ColumnElement[Any], ...]
    tiebreak: tuple[ColumnElement[Any], ...]  # appended to a client's sort for stable pages
    uuid_column: ColumnElement[Any] | None


class QueryRegistry:
    """Queryable resources by name (``"Zone"``), plus the pseudo-fields every query knows."""

    def __init__(self) -> None:
        self._resources: dict[str, QueryableResource] = {}
        self._compiled: dict[str, CompiledResource] = {}
        self._pseudo_fields: dict[str, PseudoFieldBuilder] = {}

    def register(self, resource: QueryableResource) -> None:
        if resource.name in self._resources:
            raise ZError(
                SysErr.INTERNAL, f"queryable resource {resource.name!r} is registered twice"
            )
        self._resources[resource.name] = resource
        self._compiled[resource.name] = self._compile(resource)

    def add_expansion(self, name: str, field_name: str, expansion: Expansion) -> None:
        """A plugin's extra join edge on another service's resource (ZStack's ``target=``)."""
        resource = self.get(name)
        resource.expansions[field_name] = expansion
        self._compiled[name] = self._compile(resource)

    def add_alias(self, name: str, alias: str, path: str) -> None:
        resource = self.get(name)
        resource.aliases[alias] = path
        self._compiled[name] = self._compile(resource)

    def register_pseudo_field(self, name: str, builder: PseudoFieldBuilder) -> None:
        """Make ``name`` (``__systemTag__``, ``__userTag__``) a condition field of every
        resource; the tag service plugs in here."""
        self._pseudo_fields[name] = builder
        for resource in self._resources.values():
            self._compiled[resource.name] = self._compile(resource)

    def pseudo_field(self, name: str) -> PseudoFieldBuilder | None:
        return self._pseudo_fields.get(name)

    def get(self, name: str) -> QueryableResource:
        resource = self._resources.get(name)
        if resource is None:
            raise ZError(
                SysErr.INVALID_ARGUMENT,
                f"{name!r} is not a queryable resource",
                resource=name,
                validResources=self.names(),
            )
        return resource

    def compiled(self, name: str) -> CompiledResource:
        compiled = self._compiled.get(name)
        if compiled is None:
            self.get(name)  # raises the unknown-resource error
            raise AssertionError(name)
        return compiled

    def names(self) -> list[str]:
        return sorted(self._resources)

    def validate(self) -> None:
        """Check every join edge and alias resolves; ZError SYS.1000 lists all problems."""
        problems: list[str] = []
        for resource in self._resources.values():
            compiled = self._compiled[resource.name]
            for field_name, expansion in resource.expansions.items():
                where = f"{resource.name}.{field_name}"
                if expansion.this_key not in compiled.fields:
                    problems.append(f"{where}: {expansion.this_key!r} is not a column field")
                target = self._compiled.get(expansion.target)
                if target is None:
                    problems.append(f"{where}: target {expansion.target!r} is not registered")
                elif expansion.target_key not in target.fields:
                    problems.append(
                        f"{where}: {expansion.target}.{expansion.target_key} is not a column field"
                    )
            for alias in resource.aliases:
                try:
                    self.resolve_edges(resource.name, [alias])
                except ZError as exc:
                    problems.append(f"{resource.name}.{alias}: {exc.description}")
        if problems:
            raise ZError(
                SysErr.INTERNAL,
                "query registry is inconsistent: " + "; ".join(problems),
                problems=problems,
            )

    def resolve_edges(
        self, start: str, segments: Sequence[str], depth: int = 0
    ) -> tuple[list[tuple[str, Expansion]], str]:
        """Walk ``segments`` (expansion or alias names) from resource ``start``.

        Returns the edges as (resource the edge leaves, edge) and the resource reached.
        Raises ZError SYS.1007 naming the first segment that is neither.
        """
        edges: list[tuple[str, Expansion]] = []
        current = start
        for segment in segments:
            resource = self.get(current)
            expansion = resource.expansions.get(segment)
            if expansion is not None:
                edges.append((current, expansion))
                current = expansion.target
                continue
            alias = resource.aliases.get(segment)
            if alias is None or depth >= MAX_ALIAS_DEPTH:
                compiled = self._compiled[current]
                raise ZError(
                    SysErr.INVALID_ARGUMENT,
                    f"{current} has no expanded field {segment!r}",
                    field=segment,
                    resource=current,
                    validFields=list(compiled.valid_fields),
                )
            alias_edges, current = self.resolve_edges(current, alias.split("."), depth + 1)
            edges.extend(alias_edges)
        return edges, current

    def _compile(self, resource: QueryableResource) -> CompiledResource:
        mapper = inspect(resource.model)
        attributes = {
            prop.key: getattr(resource.model, prop.key).expression
            for prop in mapper.column_attrs
            if isinstance(prop, ColumnProperty)
        }
        overrides = resource.columns or {}
        fields: dict[str, NativeField] = {}
        inventory_fields: dict[str, str] = {}
        for python_name, info in resource.inventory.model_fields.items():
            wire_name = info.alias or python_name
            inventory_fields[wire_name] = python_name
            column = overrides.get(wire_name)
            if column is None:
                column = attributes.get(python_name)
            if column is None:
                continue
            convert, type_name = converter_for(column.type)
            as_text = column if isinstance(column.type, String) else cast(column, String)
            fields[wire_name] = NativeField(
                wire_name, python_name, column, convert, type_name, as_text
            )
        visible_edges = [n for n, e in resource.expansions.items() if not e.hidden]
        valid = sorted({*fields, *visible_edges, *resource.aliases, *self._pseudo_fields})
        uuid_column = attributes.get("uuid")
        primary_key = tuple(
            attributes[mapper.get_property_by_column(c).key] for c in mapper.primary_key
        )
        tiebreak = (uuid_column,) if uuid_column is not None else primary_key
        create_date = attributes.get("create_date")
        default_order = ((create_date,) if create_date is not None else ()) + tiebreak
        return CompiledResource(
            fields=fields,
            inventory_fields=inventory_fields,
            valid_fields=tuple(valid),
            default_order=default_order,
            tiebreak=tiebreak,
            uuid_column=uuid_column,
        )
