"""Global config definitions: a typed value with a default and its validation.

A definition turns text (from the API or the database) or a typed value into a valid value,
or raises ZError(CONFIG_INVALID_VALUE) saying which config and why. Values are stored and
sent as text: ``to_text`` and ``parse`` round-trip.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar, cast

from zstackpy.core.errors import KernelErr, ZError

ConfigValue = int | float | bool | str
V = TypeVar("V", int, float, bool, str)

_TYPE_NAMES: dict[type[Any], str] = {int: "int", float: "float", bool: "bool", str: "str"}
_TRUE = frozenset({"true", "yes", "on", "1"})
_FALSE = frozenset({"false", "no", "off", "0"})


@dataclass(frozen=True, slots=True)
class GlobalConfigDef(Generic[V]):
    """One global config. ``validator`` raises ValueError (its text is the reason) to refuse
    a value that min/max/choices cannot express.

    Raises ValueError at construction if the default itself is invalid: a bad definition is
    a bug that must stop the node's start, not surface at the first read.
    """

    category: str
    name: str
    value_type: type[V]
    default: V
    description: str = ""
    min: V | None = None
    max: V | None = None
    choices: Sequence[V] | None = None
    validator: Callable[[V], None] | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if self.value_type not in _TYPE_NAMES:
            raise ValueError(f"config {self.key}: unsupported type {self.value_type!r}")
        if (self.min is not None or self.max is not None) and self.value_type not in (int, float):
            raise ValueError(f"config {self.key}: min/max apply to int and float configs only")
        try:
            self.parse(self.default)
        except ZError as exc:
            raise ValueError(f"config {self.key}: invalid default: {exc.description}") from exc

    @property
    def key(self) -> str:
        return f"{self.category}.{self.name}"

    @property
    def type_name(self) -> str:
        return _TYPE_NAMES[self.value_type]

    def parse(self, raw: ConfigValue) -> V:
        """Text or a typed value -> a valid value of this config's type; ZError if not."""
        # _coerce yields exactly value_type, which is what V is; the cast only tells mypy
        # what the runtime checks proved.
        value = cast(V, self._coerce(raw))
        self._check(value, raw)
        return value

    def to_text(self, value: ConfigValue) -> str:
        """The stored/wire form of a valid value."""
        if isinstance(value, bool):
            return "true" if value else "false"
        return str(value) if not isinstance(value, float) else repr(value)

    def default_text(self) -> str:
        return self.to_text(self.default)

    def _coerce(self, raw: ConfigValue) -> ConfigValue:
        kind = self.value_type
        if isinstance(raw, str) and kind is not str:
            return self._from_text(raw.strip())
        # bool is an int subclass, but True is not a sensible number of seconds.
        if kind is bool and isinstance(raw, bool):
            return raw
        if kind is int and isinstance(raw, int) and not isinstance(raw, bool):
            return raw
        if kind is float and isinstance(raw, int | float) and not isinstance(raw, bool):
            return self._finite(float(raw))
        if kind is str and isinstance(raw, str):
            return raw
        raise self._invalid(
            raw,
            f"expected a {self.type_name}, got {type(raw).__name__}",
            constraint=f"type={self.type_name}",
        )

    def _from_text(self, text: str) -> ConfigValue:
        kind = self.value_type
        if kind is bool:
            lowered = text.lower()
            if lowered in _TRUE:
                return True
            if lowered in _FALSE:
                return False
            raise self._invalid(text, "not a boolean (true/false)", constraint="type=bool")
        try:
            return int(text) if kind is int else self._finite(float(text))
        except ValueError:
            raise self._invalid(
                text, f"not a valid {self.type_name}", constraint=f"type={self.type_name}"
            ) from None

    def _finite(self, value: float) -> float:
        if not math.isfinite(value):
            raise self._invalid(value, "must be a finite number", constraint="finite")
        return value

    def _check(self, value: V, raw: ConfigValue) -> None:
        # Errors show ``raw``, what the caller gave, not the parsed value.
        if self.min is not None and value < self.min:
            raise self._invalid(raw, f"must be >= {self.min}", constraint=f"min={self.min}")
        if self.max is not None and value > self.max:
            raise self._invalid(raw, f"must be <= {self.max}", constraint=f"max={self.max}")
        if self.choices is not None and value not in self.choices:
            shown = ", ".join(self.to_text(c) for c in self.choices)
            raise self._invalid(raw, f"must be one of {shown}", constraint=f"choices=[{shown}]")
        if self.validator is not None:
            try:
                self.validator(value)
            except ValueError as exc:
                raise self._invalid(raw, str(exc), constraint="validator") from None

    def _invalid(self, value: object, why: str, *, constraint: str) -> ZError:
        return ZError(
            KernelErr.CONFIG_INVALID_VALUE,
            f"invalid value {value!r} for global config {self.key}: {why}",
            category=self.category,
            name=self.name,
            value=value if isinstance(value, int | float | str) else repr(value),
            constraint=constraint,
        )


def config_not_found(category: str, name: str) -> ZError:
    return ZError(
        KernelErr.CONFIG_NOT_FOUND,
        f"no global config {category}.{name}",
        category=category,
        name=name,
    )
