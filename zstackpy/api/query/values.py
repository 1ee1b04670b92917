"""Turning wire strings into the Python values a column compares with.

Query values arrive as text (REST ``q=``, RPC ``value``). Each queryable field gets one
converter, chosen once at registration from its column's Python type, so a query only calls
it. A converter raises ValueError; the engine turns that into SYS.1007 naming the field.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy.sql.type_api import TypeEngine

from zstackpy.api.messages import ZSTACK_DATE_FORMAT

Converter = Callable[[str], Any]

_TRUE = frozenset(("true", "1", "yes"))
_FALSE = frozenset(("false", "0", "no"))


def _to_bool(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ValueError(value)


_INT64 = 2**63


def _to_int(value: str) -> int:
    number = int(value.strip())
    # Both databases store at most 64-bit integers; a larger literal is bad input, not a
    # driver overflow.
    if not -_INT64 <= number < _INT64:
        raise ValueError(value)
    return number


def _to_float(value: str) -> float:
    return float(value.strip())


def _to_decimal(value: str) -> Decimal:
    try:
        return Decimal(value.strip())
    except ArithmeticError as exc:  # decimal.InvalidOperation
        raise ValueError(value) from exc


def _to_datetime(value: str) -> datetime:
    """ISO 8601, ZStack's JSON date form (what our replies show), or epoch milliseconds
    (what ZStack's Java clients send for Timestamps). Stored dates are naive UTC."""
    text = value.strip()
    if text.isdigit():
        return datetime.fromtimestamp(int(text) / 1000, tz=UTC).replace(tzinfo=None)
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        # Our replies format naive UTC values with this pattern, so this parses them back.
        parsed = datetime.strptime(text, ZSTACK_DATE_FORMAT.replace("%-", "%")).replace(tzinfo=UTC)
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(UTC).replace(tzinfo=None)
    return parsed


def _to_date(value: str) -> date:
    return date.fromisoformat(value.strip())


def _to_str(value: str) -> str:
    return value


def _enum_converter(enum_type: type[enum.Enum]) -> Converter:
    def convert(value: str) -> enum.Enum:
        for member in enum_type:
            if value in (member.name, str(member.value)):
                return member
        raise ValueError(value)

    return convert


# (python type, converter, name shown in errors); bool before int: bool is an int subclass.
_CONVERTERS: tuple[tuple[type, Converter, str], ...] = (
    (bool, _to_bool, "boolean"),
    (int, _to_int, "integer"),
    (float, _to_float, "number"),
    (Decimal, _to_decimal, "number"),
    (datetime, _to_datetime, "date-time"),
    (date, _to_date, "date"),
)


def converter_for(sql_type: TypeEngine[Any]) -> tuple[Converter, str]:
    """The converter and its type name for values compared with a column of ``sql_type``."""
    try:
        python_type: type = sql_type.python_type
    except NotImplementedError:
        return _to_str, "string"
    if issubclass(python_type, enum.Enum):
        return _enum_converter(python_type), "one of " + ", ".join(m.name for m in python_type)
    for candidate, convert, type_name in _CONVERTERS:
        if issubclass(python_type, candidate):
            return convert, type_name
    return _to_str, "string"
