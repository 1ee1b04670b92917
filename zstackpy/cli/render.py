"""How answers are shown: a readable table by default (rich, imported only then), the
node's JSON as it came with ``-o json``; errors always on stderr as ``code: description``.
"""

from __future__ import annotations

import json
import sys
from typing import Any, TextIO

# Columns a list shows first when no ``fields=`` was asked for; more scalar fields follow
# up to MAX_COLUMNS, the rest is one ``-o json`` away.
_FIRST_COLUMNS = ("name", "uuid", "state", "status", "type", "hypervisorType")
_SKIPPED_COLUMNS = frozenset({"description", "createDate", "lastOpDate"})
MAX_COLUMNS = 8


def print_json(body: Any, out: TextIO | None = None) -> None:
    out = out or sys.stdout
    out.write(json.dumps(body if body is not None else {}, indent=2, ensure_ascii=False) + "\n")
    out.flush()


def print_error(error: dict[str, Any], out: TextIO | None = None) -> None:
    out = out or sys.stderr
    lines = [f"Error {error.get('code', '?')}: {error.get('description', '')}"]
    details = error.get("details")
    if isinstance(details, dict):
        lines += [f"  {key}: {_cell(value)}" for key, value in details.items()]
    elif details:
        lines.append(f"  {details}")
    cause = error.get("cause")
    if isinstance(cause, dict) and cause.get("code"):
        lines.append(f"  caused by {cause['code']}: {cause.get('description', '')}")
    out.write("\n".join(lines) + "\n")
    out.flush()


def print_table(body: Any, fields: list[str] | None = None) -> None:
    """A readable form of any reply body: a list of inventories as rows, one inventory (or
    any other object) as name/value pairs."""
    from rich.console import Console
    from rich.table import Table

    console = Console(soft_wrap=False)
    if not isinstance(body, dict) or not body:
        console.print("ok")
        return
    if isinstance(body.get("inventories"), list):
        rows: list[dict[str, Any]] = body["inventories"]
        columns = fields or _columns(rows)
        table = Table(*columns, show_lines=False, header_style="bold")
        for row in rows:
            table.add_row(*(_cell(row.get(c)) for c in columns))
        console.print(table)
        total = f" of {body['total']}" if "total" in body else ""
        console.print(f"{len(rows)} row{'s' if len(rows) != 1 else ''}{total}", style="dim")
        return
    if set(body) == {"total"}:
        console.print(f"total: {body['total']}")
        return
    item = body["inventory"] if isinstance(body.get("inventory"), dict) else body
    table = Table("field", "value", show_header=False, box=None)
    for key, value in item.items():
        table.add_row(key, _cell(value))
    console.print(table)


def _columns(rows: list[dict[str, Any]]) -> list[str]:
    if not rows:
        return ["uuid", "name"]
    scalar = [k for k, v in rows[0].items() if not isinstance(v, dict | list)]
    first = [c for c in _FIRST_COLUMNS if c in scalar]
    rest = [c for c in scalar if c not in first and c not in _SKIPPED_COLUMNS]
    return (first + rest)[:MAX_COLUMNS]


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
