"""Read chain definitions from ``flows/*.yaml`` into located, unresolved documents.

Two document kinds (several per file, separated by ``---``)::

    chain: create-vm                      # declare a chain
    steps: [allocate-host, allocate-nics]

    extend: create-vm                     # insert steps into a chain declared elsewhere
    after: allocate-host                  # or before: <step>; neither = append
    steps: [my-plugin-flow]

Every name keeps the file and line it came from, so a bad definition found later, while
resolving, can still point at its source. See flows/README.md.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from zstackpy.core.errors import KernelErr, ZError

__all__ = ["ChainDoc", "ExtendDoc", "FlowDefinitionError", "Ref", "check_name", "parse_file"]

_KEBAB = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
_CHAIN_KEYS = frozenset({"chain", "steps", "description"})
_EXTEND_KEYS = frozenset({"extend", "after", "before", "steps", "description"})


class FlowDefinitionError(ZError):
    """A chain or flow definition is wrong; the description starts with ``file:line:``.

    Raised at load or validation time (node start), never in the middle of a run.
    """

    def __init__(
        self, description: str, *, file: str | None = None, line: int | None = None, **details: Any
    ) -> None:
        if file is None:
            where = ""
        elif line is None:
            where = f"{file}: "
        else:
            where = f"{file}:{line}: "
        super().__init__(KernelErr.FLOW_DEFINITION, where + description, **details)
        self.details.update({"file": file, "line": line})


@dataclass(frozen=True, slots=True)
class Ref:
    """A name as written in a YAML file, with its 1-based line."""

    name: str
    file: str
    line: int

    def error(self, description: str, **details: Any) -> FlowDefinitionError:
        return FlowDefinitionError(description, file=self.file, line=self.line, **details)


@dataclass(frozen=True, slots=True)
class ChainDoc:
    chain: Ref
    steps: tuple[Ref, ...]


@dataclass(frozen=True, slots=True)
class ExtendDoc:
    target: Ref
    anchor: Ref | None
    after: bool  # insert after the anchor (or at the end when there is none)
    steps: tuple[Ref, ...]


def check_name(name: str, what: str, *, file: str | None = None, line: int | None = None) -> None:
    """Ids and chain names are kebab-case: ``allocate-host``."""
    if not _KEBAB.fullmatch(name):
        raise FlowDefinitionError(f"{what} {name!r} is not kebab-case", file=file, line=line)


def parse_file(path: Path) -> list[ChainDoc | ExtendDoc]:
    """Parse one YAML file; raise ``FlowDefinitionError`` naming file and line if malformed.

    Synchronous file IO: call it at start-up, or from ``asyncio.to_thread``.
    """
    file = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise FlowDefinitionError(f"cannot read: {exc}", file=file) from exc
    docs: list[ChainDoc | ExtendDoc] = []
    try:
        for node in yaml.compose_all(text, Loader=yaml.SafeLoader):
            if isinstance(node, yaml.ScalarNode) and node.tag.endswith(":null"):
                continue  # empty document, e.g. a trailing ---
            docs.append(_document(node, file))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        raise FlowDefinitionError(f"malformed YAML: {exc.problem}", file=file, line=line) from exc
    except yaml.YAMLError as exc:
        raise FlowDefinitionError(f"malformed YAML: {exc}", file=file) from exc
    return docs


def _line(node: yaml.Node) -> int:
    return int(node.start_mark.line) + 1


def _document(node: yaml.Node, file: str) -> ChainDoc | ExtendDoc:
    if not isinstance(node, yaml.MappingNode):
        raise FlowDefinitionError(
            "a document must be a mapping with 'chain' or 'extend'", file=file, line=_line(node)
        )
    fields: dict[str, tuple[yaml.Node, yaml.Node]] = {}
    for key, value in node.value:
        if not isinstance(key, yaml.ScalarNode):
            raise FlowDefinitionError("keys must be plain words", file=file, line=_line(key))
        if key.value in fields:
            raise FlowDefinitionError(f"duplicate key {key.value!r}", file=file, line=_line(key))
        fields[key.value] = (key, value)
    kind = "chain" if "chain" in fields else "extend" if "extend" in fields else None
    if kind is None or ("chain" in fields and "extend" in fields):
        raise FlowDefinitionError(
            "a document needs exactly one of 'chain' or 'extend'", file=file, line=_line(node)
        )
    allowed = _CHAIN_KEYS if kind == "chain" else _EXTEND_KEYS
    for name, (key, _) in fields.items():
        if name not in allowed:
            raise FlowDefinitionError(
                f"unknown key {name!r} in a {kind!r} document (allowed: {sorted(allowed)})",
                file=file,
                line=_line(key),
            )
    if "steps" not in fields:
        raise FlowDefinitionError(f"{kind} document has no 'steps'", file=file, line=_line(node))
    steps = _steps(fields["steps"][1], file)
    head = _scalar(fields[kind][1], file, kind)
    if kind == "chain":
        return ChainDoc(chain=head, steps=steps)
    if "after" in fields and "before" in fields:
        raise FlowDefinitionError(
            "use 'after' or 'before', not both", file=file, line=_line(fields["before"][0])
        )
    anchor_key = "before" if "before" in fields else "after" if "after" in fields else None
    anchor = None if anchor_key is None else _scalar(fields[anchor_key][1], file, anchor_key)
    return ExtendDoc(target=head, anchor=anchor, after=anchor_key != "before", steps=steps)


def _scalar(node: yaml.Node, file: str, what: str) -> Ref:
    if not isinstance(node, yaml.ScalarNode) or not isinstance(node.value, str) or not node.value:
        raise FlowDefinitionError(f"{what!r} must be a name", file=file, line=_line(node))
    check_name(node.value, what, file=file, line=_line(node))
    return Ref(node.value, file, _line(node))


def _steps(node: yaml.Node, file: str) -> tuple[Ref, ...]:
    if not isinstance(node, yaml.SequenceNode):
        raise FlowDefinitionError(
            "'steps' must be a list of flow ids or chain names", file=file, line=_line(node)
        )
    return tuple(_scalar(item, file, "step") for item in node.value)
