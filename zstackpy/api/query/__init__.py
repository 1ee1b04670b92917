"""The generic query engine: ZStack's query language over any registered resource.

Services register a QueryableResource for each inventory; the API layer hands every
``Query<Noun>`` message to run_query. REST front-ends parse ``q=`` and ``sort=`` with
parse_rest_condition and parse_sort.
"""

from zstackpy.api.query.engine import run_query
from zstackpy.api.query.registry import (
    Expansion,
    PseudoFieldBuilder,
    PseudoFieldContext,
    QueryableResource,
    QueryRegistry,
)
from zstackpy.api.query.syntax import (
    ALL_OPERATORS,
    REST_OPERATOR_TEXTS,
    parse_rest_condition,
    parse_sort,
)

__all__ = [
    "ALL_OPERATORS",
    "REST_OPERATOR_TEXTS",
    "Expansion",
    "PseudoFieldBuilder",
    "PseudoFieldContext",
    "QueryRegistry",
    "QueryableResource",
    "parse_rest_condition",
    "parse_sort",
    "run_query",
]
