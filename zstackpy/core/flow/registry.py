"""The node's flows and chains: code registers flow factories, YAML declares chains.

Start-up order: ``register`` every flow (core and plugins), ``load_dir`` every flows
directory (core first, then plugins), then ``validate`` once so a bad definition fails the
node's start, not the first run.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from zstackpy.core.flow.engine import FlowChain, FlowFactory
from zstackpy.core.flow.loader import (
    ChainDoc,
    ExtendDoc,
    FlowDefinitionError,
    Ref,
    check_name,
    parse_file,
)
from zstackpy.core.flow.trace import FlowTrace

__all__ = ["ChainRunObserver", "FlowRegistry"]

# (chain name, seconds, succeeded): told after every run started by ``FlowRegistry.run``.
ChainRunObserver = Callable[[str, float, bool], None]


class FlowRegistry:
    """Flow factories by id, chain definitions by name; resolves them into ``FlowChain``."""

    def __init__(self) -> None:
        self._factories: dict[str, FlowFactory] = {}
        self._docs: list[ChainDoc | ExtendDoc] = []
        self._chains: dict[str, FlowChain] | None = None
        # Set by the node for its metrics; chains are few, so the name is a fine label.
        self.observer: ChainRunObserver | None = None

    def register(self, flow_id: str, factory: FlowFactory) -> None:
        """Register a flow; ``factory()`` is called once per step per chain run.

        Raises ``FlowDefinitionError`` for a non-kebab-case or already registered id.
        """
        check_name(flow_id, "flow id")
        if flow_id in self._factories:
            raise FlowDefinitionError(f"flow id {flow_id!r} is registered twice", flow=flow_id)
        self._factories[flow_id] = factory
        self._chains = None

    def load_dir(self, path: Path) -> int:
        """Read every ``*.yaml`` in ``path`` (sorted by name); return how many documents.

        Call once per directory; extensions apply in load order. Synchronous file IO:
        call at start-up or via ``asyncio.to_thread``. Raises ``FlowDefinitionError``.
        """
        if not path.is_dir():
            raise FlowDefinitionError("not a directory", file=str(path))
        docs: list[ChainDoc | ExtendDoc] = []
        for file in sorted(path.glob("*.yaml")):
            docs.extend(parse_file(file))
        self._docs.extend(docs)
        self._chains = None
        return len(docs)

    def validate(self) -> None:
        """Resolve every chain; raise ``FlowDefinitionError`` naming file and line.

        Errors: a chain declared twice, a chain name that is also a flow id, an extension
        of an unknown chain or with an anchor not (or more than once) in it, a step that is
        neither a flow id nor a chain name, chains that include each other.
        """
        self._chains = _Resolver(self._factories, self._docs).resolve_all()

    def names(self) -> list[str]:
        """Chain names, sorted."""
        return sorted(self._resolved())

    def chain(self, name: str) -> FlowChain:
        """The resolved chain ``name``; validates first if definitions changed."""
        chain = self._resolved().get(name)
        if chain is None:
            raise FlowDefinitionError(f"no chain named {name!r}", chain=name)
        return chain

    async def run(self, chain_name: str, ctx: object) -> FlowTrace:
        """Run chain ``chain_name`` with ``ctx``; see ``FlowChain.run`` for failures."""
        chain = self.chain(chain_name)
        observer = self.observer
        if observer is None:
            return await chain.run(ctx)
        started = time.perf_counter()
        succeeded = False
        try:
            trace = await chain.run(ctx)
            succeeded = True
            return trace
        finally:
            observer(chain_name, time.perf_counter() - started, succeeded)

    def _resolved(self) -> dict[str, FlowChain]:
        if self._chains is None:
            self.validate()
        assert self._chains is not None  # set by validate() or it raised
        return self._chains


class _Resolver:
    def __init__(self, factories: dict[str, FlowFactory], docs: list[ChainDoc | ExtendDoc]):
        self._factories = factories
        self._defs: dict[str, tuple[Ref, list[Ref]]] = {}
        self._done: dict[str, FlowChain] = {}
        for doc in docs:
            if isinstance(doc, ChainDoc):
                self._declare(doc)
        for doc in docs:
            if isinstance(doc, ExtendDoc):
                self._extend(doc)

    def resolve_all(self) -> dict[str, FlowChain]:
        for name in self._defs:
            self._resolve(name, [])
        return self._done

    def _declare(self, doc: ChainDoc) -> None:
        name = doc.chain.name
        first = self._defs.get(name)
        if first is not None:
            raise doc.chain.error(
                f"chain {name!r} is already declared at {first[0].file}:{first[0].line}",
                chain=name,
            )
        if name in self._factories:
            raise doc.chain.error(f"chain name {name!r} is also a flow id", chain=name)
        self._defs[name] = (doc.chain, list(doc.steps))

    def _extend(self, doc: ExtendDoc) -> None:
        target = self._defs.get(doc.target.name)
        if target is None:
            raise doc.target.error(
                f"extend: no chain named {doc.target.name!r}", chain=doc.target.name
            )
        steps = target[1]
        if doc.anchor is None:
            steps.extend(doc.steps)
            return
        at = [i for i, ref in enumerate(steps) if ref.name == doc.anchor.name]
        if len(at) != 1:
            found = "not in" if not at else "more than once in"
            raise doc.anchor.error(
                f"extend: step {doc.anchor.name!r} is {found} chain {doc.target.name!r} "
                f"(steps: {[r.name for r in steps]})",
                chain=doc.target.name,
                anchor=doc.anchor.name,
            )
        index = at[0] + 1 if doc.after else at[0]
        steps[index:index] = doc.steps

    def _resolve(self, name: str, stack: list[str]) -> FlowChain:
        done = self._done.get(name)
        if done is not None:
            return done
        stack.append(name)
        head, refs = self._defs[name]
        steps: list[tuple[str, FlowFactory] | FlowChain] = []
        for ref in refs:
            factory = self._factories.get(ref.name)
            if factory is not None:
                steps.append((ref.name, factory))
            elif ref.name in self._defs:
                if ref.name in stack:
                    cycle = [*stack[stack.index(ref.name) :], ref.name]
                    raise ref.error(f"chains include each other: {' -> '.join(cycle)}", cycle=cycle)
                steps.append(self._resolve(ref.name, stack))
            else:
                raise ref.error(
                    f"step {ref.name!r} of chain {name!r} is neither a registered flow id "
                    "nor a chain name",
                    chain=name,
                    step=ref.name,
                )
        stack.pop()
        chain = self._done[name] = FlowChain(head.name, steps)
        return chain
