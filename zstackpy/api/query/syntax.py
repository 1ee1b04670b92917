"""ZStack's query operators and the REST text forms that carry them.

The REST front-end turns each ``q=`` string into a QueryCondition with parse_rest_condition
and ``sort=`` into a field and direction with parse_sort; the RPC front-end sends conditions
already split. Both end up with the QueryOp texts in OPERATORS.
"""

from __future__ import annotations

from typing import Literal

from zstackpy.api.messages import QueryCondition
from zstackpy.core.errors import SysErr, ZError

SortDirection = Literal["asc", "desc"]

# ZStack's QueryOp texts, the ``op`` of a QueryCondition.
EQ, NE, GT, LT, GE, LE = "=", "!=", ">", "<", ">=", "<="
IN, NOT_IN, LIKE, NOT_LIKE = "in", "not in", "like", "not like"
IS_NULL, IS_NOT_NULL = "is null", "is not null"

OPERATORS: tuple[str, ...] = (EQ, NE, GT, LT, GE, LE, IN, NOT_IN, LIKE, NOT_LIKE)
NULL_OPERATORS: frozenset[str] = frozenset((IS_NULL, IS_NOT_NULL))
ALL_OPERATORS: tuple[str, ...] = (*OPERATORS, IS_NULL, IS_NOT_NULL)

# RestServer.QUERY_OP_MAPPING, in its order: the first operator that occurs anywhere in the
# text wins, so the longer forms must come before their substrings ("!=" before "=").
REST_OPERATORS: tuple[tuple[str, str], ...] = (
    ("!=", NE),
    (">=", GE),
    ("<=", LE),
    ("!?=", NOT_IN),
    ("!~=", NOT_LIKE),
    ("~=", LIKE),
    ("?=", IN),
    ("=", EQ),
    (">", GT),
    ("<", LT),
    ("is null", IS_NULL),
    ("not null", IS_NOT_NULL),
)
REST_OPERATOR_TEXTS: tuple[str, ...] = tuple(text for text, _ in REST_OPERATORS)


def parse_rest_condition(text: str) -> QueryCondition:
    """Split one REST ``q=`` string at its operator, as ZStack's RestServer does.

    The value is kept as sent (not trimmed: a value may end in a space); the name is stripped,
    since no field name has spaces and ``hostUuid is null`` needs it. Raises ZError SYS.1007
    when no operator occurs or a side is missing.
    """
    for op_text, op in REST_OPERATORS:
        name, found, value = text.partition(op_text)
        if not found:
            continue
        name = name.strip()
        if not name:
            raise ZError(
                SysErr.INVALID_ARGUMENT,
                f"query condition {text!r} has no field name before {op_text!r}",
                condition=text,
            )
        if op in NULL_OPERATORS:
            if value.strip():
                raise ZError(
                    SysErr.INVALID_ARGUMENT,
                    f"query condition {text!r} has text after {op_text!r}",
                    condition=text,
                )
            return QueryCondition(name=name, op=op)
        return QueryCondition(name=name, op=op, value=value)
    raise ZError(
        SysErr.INVALID_ARGUMENT,
        f"query condition {text!r} has no operator; valid operators are "
        + ", ".join(REST_OPERATOR_TEXTS),
        condition=text,
        validOperators=list(REST_OPERATOR_TEXTS),
    )


def parse_sort(text: str) -> tuple[str, SortDirection]:
    """``+name``/``name`` -> ascending, ``-name`` -> descending.

    Surrounding spaces are dropped: an unencoded ``+`` in a URL arrives as a space.
    """
    spec = text.strip()
    direction: SortDirection = "asc"
    if spec[:1] in ("+", "-"):
        direction = "desc" if spec[0] == "-" else "asc"
        spec = spec[1:].strip()
    if not spec:
        raise ZError(SysErr.INVALID_ARGUMENT, f"sort {text!r} names no field; use +field or -field")
    return spec, direction
