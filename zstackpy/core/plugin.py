"""Plugins and extension points.

A plugin is any object with a ``name`` and ``setup(registry)``; it is found through the
entry-point group ``zstackpy.plugins`` (the built-ins too) or named in the ``plugins``
setting as ``module:attribute``. In ``setup`` it registers services, extension
implementations, flows, flow directories and global configs.

An extension point is a ``typing.Protocol``. Every implementation is checked against the
Protocol when it is registered, so a wrong hook fails the node's start, not the first call.
"""

from __future__ import annotations

import importlib
import inspect
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import partial
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, Protocol, TypeVar, cast, runtime_checkable

from zstackpy.core.errors import KernelErr, ZError
from zstackpy.core.service import Service

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "zstackpy.plugins"

P = TypeVar("P")


@runtime_checkable
class Plugin(Protocol):
    name: str

    def setup(self, registry: PluginRegistry) -> None: ...


@dataclass
class PluginRegistry:
    """Everything plugins contribute, collected before the node builds its services."""

    plugins: list[str] = field(default_factory=list)
    services: list[type[Service]] = field(default_factory=list)
    flow_factories: dict[str, Callable[[], Any]] = field(default_factory=dict)
    flow_dirs: list[Path] = field(default_factory=list)
    global_configs: list[Any] = field(default_factory=list)
    queryables: list[Any] = field(default_factory=list)
    query_pseudo_fields: dict[str, Any] = field(default_factory=dict)
    query_expansions: list[tuple[str, str, Any]] = field(default_factory=list)
    query_aliases: list[tuple[str, str, str]] = field(default_factory=list)
    error_statuses: dict[str, int] = field(default_factory=dict)
    system_tag_patterns: list[Any] = field(default_factory=list)
    _extensions: dict[type[Any], list[Any]] = field(default_factory=dict)
    _current: str = "<node>"

    # ----- what plugins call -----------------------------------------------------------

    def add_service(self, service: type[Service]) -> None:
        if not service.name:
            raise ZError(
                KernelErr.PLUGIN_CONTRACT,
                f"plugin {self._current!r}: service {service.__qualname__} has no name",
            )
        if any(s.name == service.name for s in self.services):
            raise ZError(
                KernelErr.PLUGIN_CONTRACT,
                f"plugin {self._current!r}: a service named {service.name!r} already exists",
            )
        self.services.append(service)

    def add_extension(self, point: type[P], impl: P | type[Service]) -> None:
        """Register ``impl`` for extension point ``point``.

        ``impl`` is an object, or a Service class: the node then uses that service's
        instance, so a service can implement hooks (takeover, for one) itself.
        """
        check_implements(point, impl, plugin=self._current)
        self._extensions.setdefault(point, []).append(impl)

    def add_flow(self, flow_id: str, factory: Callable[[], Any]) -> None:
        if flow_id in self.flow_factories:
            raise ZError(
                KernelErr.PLUGIN_CONTRACT,
                f"plugin {self._current!r}: flow {flow_id!r} is already registered",
            )
        self.flow_factories[flow_id] = factory

    def add_flow_dir(self, path: Path) -> None:
        self.flow_dirs.append(path)

    def add_global_config(self, definition: Any) -> None:
        self.global_configs.append(definition)

    def add_queryable(self, resource: Any) -> None:
        """A resource type the query API serves (a ``zstackpy.api.query.QueryableResource``)."""
        self.queryables.append(resource)

    def add_query_expansion(self, resource: str, field_name: str, expansion: Any) -> None:
        """A join edge on a resource another plugin registers (``Zone.host``): an
        ``api.query.Expansion``; applied once every plugin's resources are in."""
        self.query_expansions.append((resource, field_name, expansion))

    def add_query_alias(self, resource: str, alias: str, path: str) -> None:
        """A named path of edges on another plugin's resource (``Cluster.primaryStorage`` =
        ``primaryStorageRef.primaryStorage``), applied after every expansion."""
        self.query_aliases.append((resource, alias, path))

    def add_error_status(self, code: str, status: int) -> None:
        """The HTTP status API errors with ``code`` answer (default 503, as ZStack): 400 for
        bad input, 404 missing, 409 conflicts."""
        self.error_statuses[str(code)] = status

    def add_query_pseudo_field(self, name: str, builder: Any) -> None:
        """A field every query accepts (``__systemTag__``): a ``PseudoFieldBuilder``."""
        if name in self.query_pseudo_fields:
            raise ZError(
                KernelErr.PLUGIN_CONTRACT,
                f"plugin {self._current!r}: query pseudo-field {name!r} is already registered",
            )
        self.query_pseudo_fields[name] = builder

    def add_system_tag_pattern(self, pattern: Any) -> None:
        """A system tag form a resource type accepts (a ``services.tag.patterns.TagPattern``)."""
        self.system_tag_patterns.append(pattern)

    # ----- what the node and services call ---------------------------------------------

    def extensions(self, point: type[P]) -> list[P]:
        return cast(list[P], list(self._extensions.get(point, ())))

    def bind_services(self, instances: dict[type[Service], Service]) -> None:
        """Replace Service classes registered as extensions by their instances."""
        for point, impls in self._extensions.items():
            self._extensions[point] = [
                instances[i] if isinstance(i, type) and i in instances else i for i in impls
            ]

    def install(self, plugin: Plugin, source: str) -> None:
        self._current = f"{plugin.name} ({source})"
        try:
            plugin.setup(self)
        except ZError:
            raise
        except Exception as exc:
            raise ZError(
                KernelErr.PLUGIN_LOAD,
                f"plugin {plugin.name!r} from {source} failed in setup: {exc}",
                plugin=plugin.name,
                source=source,
            ) from exc
        finally:
            self._current = "<node>"
        self.plugins.append(plugin.name)


def check_implements(point: type[Any], impl: object, *, plugin: str) -> None:
    """Raise PLUGIN_CONTRACT unless ``impl`` has every method of ``point`` with a matching
    signature (same parameter names and kinds, async where the Protocol is async)."""
    owner = impl if isinstance(impl, type) else type(impl)
    for name, expected in _protocol_methods(point):
        actual = getattr(owner, name, None)
        where = f"plugin {plugin!r}: {owner.__qualname__}.{name} (extension {point.__name__})"
        if actual is None or not callable(actual):
            raise ZError(KernelErr.PLUGIN_CONTRACT, f"{where} is missing")
        if inspect.iscoroutinefunction(expected) and not inspect.iscoroutinefunction(actual):
            raise ZError(KernelErr.PLUGIN_CONTRACT, f"{where} must be 'async def'")
        want = _shape(expected)
        got = _shape(actual)
        if want != got:
            raise ZError(
                KernelErr.PLUGIN_CONTRACT,
                f"{where} has parameters {got}, the extension point expects {want}",
            )


def _protocol_methods(point: type[Any]) -> Iterable[tuple[str, Callable[..., Any]]]:
    for name, value in vars(point).items():
        if name.startswith("_") or not inspect.isfunction(value):
            continue
        yield name, value


def _shape(fn: Callable[..., Any]) -> list[tuple[str, str]]:
    params = list(inspect.signature(fn).parameters.values())
    return [(p.name, p.kind.name) for p in params if p.name != "self"]


def discover(extra: Iterable[str] = ()) -> list[tuple[Plugin, str]]:
    """Installed plugins (entry points), then ``module:attribute`` specs from settings."""
    found: list[tuple[Plugin, str]] = []
    for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        source = f"entry point {ep.name} = {ep.value}"
        found.append((_as_plugin(_load(ep.load, source), source), source))
    for spec in extra:
        source = f"setting plugins: {spec}"
        found.append((_as_plugin(_load(partial(_import_spec, spec), source), source), source))
    return found


def _load(loader: Callable[[], object], source: str) -> object:
    try:
        return loader()
    except Exception as exc:
        raise ZError(
            KernelErr.PLUGIN_LOAD, f"cannot load plugin from {source}: {exc}", source=source
        ) from exc


def _import_spec(spec: str) -> object:
    module_name, sep, attr = spec.partition(":")
    if not sep or not attr:
        raise ValueError(f"{spec!r} is not of the form module:attribute")
    return getattr(importlib.import_module(module_name), attr)


def _as_plugin(obj: object, source: str) -> Plugin:
    if not isinstance(obj, Plugin):
        raise ZError(
            KernelErr.PLUGIN_CONTRACT,
            f"{source} is not a plugin: it needs a 'name' and a 'setup(registry)' method",
            source=source,
        )
    return obj
