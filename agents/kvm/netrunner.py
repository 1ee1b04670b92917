"""Putting rendered rule sets in place: iptables tables through ``iptables-restore`` and
dnsmasq files by atomic rename, each only when what is live differs.

The plan for a table comes from ``iptables-save`` of it: nothing to do when the owned
dispatch chain starts with the digest of the wanted set, every owned chain exists and the
hooks from the built-in chains are there. Otherwise one ``iptables-restore --noflush``
transaction declares (so empties) every owned chain, fills them, adds the missing hooks
and deletes owned chains no longer wanted; the rest of the table (the operator's rules,
libvirt's) is never touched. Applying twice is applying once.

``netns`` runs every command inside that network namespace (``ip netns exec``): the
tests use a namespace of their own, so the machine's rules stay as they are. ``dry``
keeps iptables out of it altogether (the agent on libvirt's test driver, which has no
guest to filter, and whose tests must not change the machine's rules): tables are
rendered, never applied.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

from agents.kvm.netrender import CHAIN_PREFIX, MARKER, TableRules
from agents.runtime.commands import run_command

_CHAIN = re.compile(r"^:(\S+) ")
_HOOK = re.compile(r"^-A (\S+) -j (\S+)$")
_DIGEST = re.compile(re.escape(MARKER) + r"([0-9a-f]+)")


@dataclass(frozen=True, slots=True)
class LiveTable:
    chains: frozenset[str]
    hooks: frozenset[tuple[str, str]]
    digest: str | None  # what the first owned dispatch chain says it holds


def parse_save(text: str, dispatch: str) -> LiveTable:
    """What ``iptables-save -t <table>`` shows of this agent's chains."""
    chains: set[str] = set()
    hooks: set[tuple[str, str]] = set()
    digest = None
    for line in text.splitlines():
        if m := _CHAIN.match(line):
            chains.add(m.group(1))
        elif (m := _HOOK.match(line)) and m.group(2).startswith(CHAIN_PREFIX):
            hooks.add((m.group(1), m.group(2)))
        elif digest is None and line.startswith(f"-A {dispatch} ") and (d := _DIGEST.search(line)):
            digest = d.group(1)
    return LiveTable(frozenset(chains), frozenset(hooks), digest)


def plan(wanted: TableRules, live: LiveTable) -> str | None:
    """The ``iptables-restore --noflush`` input that brings ``live`` to ``wanted``; None
    when it is there already."""
    owned = {c for c in live.chains if c.startswith(CHAIN_PREFIX)}
    stale = sorted(owned - set(wanted.chains))
    missing_hooks = [h for h in wanted.hooks if h not in live.hooks]
    if (
        live.digest == wanted.digest()
        and set(wanted.chains) <= live.chains
        and not missing_hooks
        and not stale
    ):
        return None
    lines = [f"*{wanted.table}"]
    lines += [f":{chain} - [0:0]" for chain in (*wanted.chains, *stale)]
    lines.append(wanted.marker())
    lines += wanted.rules
    lines += [f"-I {builtin} 1 -j {chain}" for builtin, chain in missing_hooks]
    # A stale hook from a built-in chain would keep its chain alive: it goes first.
    stale_hooks = [h for h in live.hooks if h[1] in stale]
    lines += [f"-D {builtin} -j {chain}" for builtin, chain in sorted(stale_hooks)]
    lines += [f"-X {chain}" for chain in stale]
    lines.append("COMMIT")
    return "\n".join(lines) + "\n"


_PACKAGES = {"ip": "iproute2", "iptables-save": "iptables", "iptables-restore": "iptables"}


class NetRunner:
    """Applies rendered sets; one apply at a time (commands arrive concurrently)."""

    def __init__(self, dnsmasq_dir: Path, netns: str = "", *, dry: bool = False) -> None:
        self.dnsmasq_dir, self.dry = dnsmasq_dir, dry
        self.prefix: tuple[str, ...] = ("ip", "netns", "exec", netns) if netns else ()
        self.lock = asyncio.Lock()

    async def _run(self, *argv: str, stdin: str | None = None) -> str:
        return await run_command(
            (*self.prefix, *argv), argv[0], stdin=stdin, where="this host", packages=_PACKAGES
        )

    async def live(self, table: str, dispatch: str) -> LiveTable:
        return parse_save(await self._run("iptables-save", "-t", table), dispatch)

    async def apply_table(self, wanted: TableRules) -> bool:
        """Bring one table to ``wanted``; True when something changed."""
        if self.dry:
            return False
        text = plan(wanted, await self.live(wanted.table, wanted.chains[0]))
        if text is None:
            return False
        await self._run("iptables-restore", "--noflush", stdin=text)
        return True

    async def apply_files(self, files: dict[str, str]) -> list[str]:
        """The dnsmasq directory holds exactly ``files``; the names written or removed."""
        return await asyncio.to_thread(_sync_files, self.dnsmasq_dir, files)

    async def apply_tree(self, root: Path, files: dict[str, bytes]) -> list[str]:
        """``root`` holds exactly ``files`` (relative paths); the paths written or removed."""
        return await asyncio.to_thread(_sync_tree, root, files)


def _sync_files(directory: Path, files: dict[str, str]) -> list[str]:
    directory.mkdir(parents=True, exist_ok=True)
    changed = []
    for name, text in files.items():
        path = directory / name
        with contextlib.suppress(FileNotFoundError):
            if path.read_text(encoding="utf-8") == text:
                continue
        part = directory / f".{name}.part"
        part.write_text(text, encoding="utf-8")
        os.replace(part, path)  # dnsmasq reading it sees the old file or the new one
        changed.append(name)
    for path in directory.iterdir():
        if not path.name.startswith(".") and path.name not in files:
            path.unlink()
            changed.append(path.name)
    return sorted(changed)


def _sync_tree(root: Path, files: dict[str, bytes]) -> list[str]:
    root.mkdir(parents=True, exist_ok=True)
    changed = []
    for name, data in files.items():
        path = root / name
        with contextlib.suppress(FileNotFoundError):
            if path.read_bytes() == data:
                continue
        path.parent.mkdir(parents=True, exist_ok=True)
        part = path.with_name(f".{path.name}.part")
        part.write_bytes(data)
        os.replace(part, path)  # a guest reading it gets the old file or the new one
        changed.append(name)
    wanted = {root / name for name in files}
    # Deepest first, so directories emptied of files go too.
    for path in sorted(root.rglob("*"), key=lambda p: len(p.parts), reverse=True):
        if path.is_dir():
            if not any(path.iterdir()):
                path.rmdir()
        elif path not in wanted:
            path.unlink()
            changed.append(str(path.relative_to(root)))
    return sorted(changed)
