"""System tag patterns: which system tags a resource type accepts.

A pattern is ZStack's form, literal text with ``{placeholders}``: ``hostname::{hostname}``,
``staticIp::{l3NetworkUuid}::{ip}``. Plugins register patterns per resource type (the VO
name, e.g. ``VmInstanceVO``); a system tag is accepted for a type when some pattern of that
type matches it whole and each placeholder's value passes the pattern's check.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from zstackpy.core.errors import SysErr, ZError

_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
MAX_TAG_LENGTH = 1024

ValueCheck = Callable[[str], bool]


@dataclass(frozen=True)
class TagPattern:
    resource_type: str
    pattern: str
    checks: Mapping[str, ValueCheck] = field(default_factory=dict)
    description: str = ""

    def __post_init__(self) -> None:
        unknown = set(self.checks) - set(self.placeholders)
        if unknown:
            raise ValueError(f"tag pattern {self.pattern!r} checks unknown placeholders {unknown}")

    @property
    def placeholders(self) -> list[str]:
        return _PLACEHOLDER.findall(self.pattern)

    @property
    def regex(self) -> re.Pattern[str]:
        parts: list[str] = []
        last = 0
        for match in _PLACEHOLDER.finditer(self.pattern):
            parts.append(re.escape(self.pattern[last : match.start()]))
            parts.append(f"(?P<{match.group(1)}>.+?)")
            last = match.end()
        parts.append(re.escape(self.pattern[last:]))
        return re.compile("^" + "".join(parts) + "$")

    def match(self, tag: str) -> dict[str, str] | None:
        found = self.regex.match(tag)
        if found is None:
            return None
        values = found.groupdict()
        if all(check(values[name]) for name, check in self.checks.items()):
            return values
        return None


def check_system_tags(
    patterns: Iterable[TagPattern], resource_type: str, tags: Iterable[str]
) -> None:
    """Raise SYS.1007 naming the first tag no pattern of ``resource_type`` accepts."""
    own = [p for p in patterns if p.resource_type == resource_type]
    for tag in tags:
        if not tag or len(tag) > MAX_TAG_LENGTH:
            raise ZError(
                SysErr.INVALID_ARGUMENT,
                f"a tag must have 1 to {MAX_TAG_LENGTH} characters",
                tag=tag[:64],
            )
        if not any(p.match(tag) is not None for p in own):
            raise ZError(
                SysErr.INVALID_ARGUMENT,
                f"system tag {tag!r} matches no system tag pattern of {resource_type}",
                tag=tag,
                resourceType=resource_type,
                validPatterns=[p.pattern for p in own],
            )


def check_user_tags(tags: Iterable[str]) -> None:
    for tag in tags:
        if not tag or len(tag) > MAX_TAG_LENGTH:
            raise ZError(
                SysErr.INVALID_ARGUMENT,
                f"a tag must have 1 to {MAX_TAG_LENGTH} characters",
                tag=tag[:64],
            )
