"""Tab completion for the shell: action names, parameter names (a query's field names
too), fixed choices, and for ``uuid``/``*Uuid``/``*Uuids`` the resources the node has,
matched by UUID or by name, fetched live and kept a few seconds."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from prompt_toolkit.completion import CompleteEvent, Completer, Completion
from prompt_toolkit.document import Document

from zstackpy.cli.args import split_arg
from zstackpy.cli.catalogue import QUERY_KEYS, Action, Catalogue
from zstackpy.cli.client import Client, UnreachableError
from zstackpy.cli.settings import UsageError

BUILTINS = ("help", "exit", "quit")
# Resources change while the shell is open; a short memory keeps Tab-Tab from re-asking.
_LIVE_TTL_S = 5.0
_LIVE_LIMIT = 500


@dataclass(frozen=True)
class Resource:
    uuid: str
    name: str


class LiveLookup:
    """What the node has now: resources of a query (uuid, name) and a query's fields."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self._memo: dict[str, tuple[float, list[dict[str, Any]]]] = {}

    def _rows(self, action: Action, limit: int) -> list[dict[str, Any]]:
        key = f"{action.path}?{limit}"
        now = time.monotonic()
        hit = self._memo.get(key)
        if hit is not None and now - hit[0] < _LIVE_TTL_S:
            return hit[1]
        try:
            answer = self.client.request("GET", action.path, query=[("limit", str(limit))])
        except UnreachableError:
            return []
        rows = answer.body.get("inventories", []) if isinstance(answer.body, dict) else []
        rows = [r for r in rows if isinstance(r, dict)]
        self._memo[key] = (now, rows)
        return rows

    def resources(self, query: Action) -> list[Resource]:
        return [
            Resource(str(r["uuid"]), str(r.get("name") or ""))
            for r in self._rows(query, _LIVE_LIMIT)
            if r.get("uuid")
        ]

    def fields(self, query: Action) -> list[str]:
        rows = self._rows(query, 1)
        return sorted(rows[0]) if rows else []


class CliCompleter(Completer):
    def __init__(self, catalogue: Callable[[], Catalogue], live: LiveLookup) -> None:
        # A callable: the shell starts before the catalogue is loaded (node may be down).
        self._catalogue, self.live = catalogue, live

    def get_completions(
        self, document: Document, complete_event: CompleteEvent
    ) -> Iterable[Completion]:
        try:
            yield from self._complete(document.text_before_cursor)
        except (UnreachableError, UsageError, OSError):
            return  # completion is best effort: never break the line being typed

    def _complete(self, text: str) -> Iterable[Completion]:
        words = text.split()
        if text and text[-1].isspace():
            words.append("")
        if len(words) <= 1:
            yield from _prefixed(words[0] if words else "", self.action_names())
            return
        first, current, used = words[0], words[-1], words[1:-1]
        if first == "help":
            yield from _prefixed(current, self._catalogue().names())
            return
        action = self._catalogue().get(first)
        if action is None:
            return
        try:
            key, _op, value = split_arg(current)
        except UsageError:
            yield from _prefixed(current, self.param_names(action, used))
            return
        yield from self.values(action, key, value)

    def action_names(self) -> list[str]:
        return [*self._catalogue().names(), *BUILTINS]

    def param_names(self, action: Action, used: list[str]) -> list[str]:
        given = {w.split("=", 1)[0] for w in used}
        names = [*self.live.fields(action), *QUERY_KEYS] if action.is_query else action.params
        return [f"{n}=" for n in names if n not in given]

    def values(self, action: Action, key: str, typed: str) -> Iterable[Completion]:
        param = action.params.get(key)
        is_list = param is not None and param.kind == "array"
        # Lists are comma-separated: complete the item after the last comma.
        item = typed.rpartition(",")[2] if is_list or key == "fields" else typed
        if action.is_query and key == "fields":
            yield from _prefixed(item, self.live.fields(action))
            return
        if param is not None and param.choices:
            yield from _prefixed(item, param.choices)
            return
        if param is not None and param.kind == "boolean":
            yield from _prefixed(item, ["true", "false"])
            return
        query = self._resource_query(action, key)
        if query is None:
            return
        lowered = item.lower()
        for res in self.live.resources(query):
            if res.uuid.startswith(item) or res.name.lower().startswith(lowered):
                yield Completion(
                    res.uuid, start_position=-len(item), display=res.uuid, display_meta=res.name
                )

    def _resource_query(self, action: Action, key: str) -> Action | None:
        catalogue = self._catalogue()
        if key == "uuid":
            return action if action.is_query else catalogue.query_of_path(action.path)
        for suffix in ("Uuids", "Uuid"):
            if key.endswith(suffix) and len(key) > len(suffix):
                return catalogue.query_for(key[: -len(suffix)])
        return None


def _prefixed(typed: str, candidates: Iterable[str]) -> Iterable[Completion]:
    lowered = typed.lower()
    for candidate in candidates:
        if candidate.lower().startswith(lowered):
            yield Completion(candidate, start_position=-len(typed))
