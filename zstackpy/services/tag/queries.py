"""Tags in queries: ``__systemTag__`` and ``__userTag__`` match resources carrying a tag.

``q=__systemTag__=hostname::web1`` finds the resources with that system tag; the operators
are the query API's text ones (=, !=, in, not in, like, not like). ``!=`` and ``not ...``
mean "has no tag that ...", the way an operator reads it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import ColumnElement, String, bindparam, select

from zstackpy.api.messages import QueryCondition
from zstackpy.api.query import PseudoFieldContext
from zstackpy.core.errors import SysErr, ZError
from zstackpy.services.tag.models import SystemTagVO, UserTagVO

_POSITIVE = {"=": "=", "!=": "=", "in": "in", "not in": "in", "like": "like", "not like": "like"}


def tag_pseudo_field(
    table: type[SystemTagVO | UserTagVO],
) -> Callable[[PseudoFieldContext, QueryCondition], ColumnElement[bool]]:
    def build(context: PseudoFieldContext, condition: QueryCondition) -> ColumnElement[bool]:
        positive = _POSITIVE.get(condition.op)
        if positive is None or condition.value is None:
            raise ZError(
                SysErr.INVALID_ARGUMENT,
                f"{condition.name} takes the operators {', '.join(_POSITIVE)} with a value",
                field=condition.name,
                op=condition.op,
                validOperators=list(_POSITIVE),
            )
        tag: Any = table.tag
        value = condition.value
        if positive == "=":
            match = tag == bindparam(None, value, type_=String())
        elif positive == "in":
            match = tag.in_(value.split(","))
        else:
            match = tag.like(bindparam(None, value, type_=String()))
        tagged = select(table.resource_uuid).where(match).correlate(None)
        uuid = context.compiled.fields["uuid"].column
        return uuid.not_in(tagged) if positive != condition.op else uuid.in_(tagged)

    return build
