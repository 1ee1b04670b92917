"""GlobalConfigs: the definitions, their current values cached in memory, and watchers.

Reads never touch the database: ``get`` answers from the cache that ``load`` fills at start
and ``apply_change`` keeps current when a GlobalConfigChangedEvent arrives (on every node,
the changing one included). Only GlobalConfigService writes values.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any, TypeVar, cast

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from zstackpy.core.config.definitions import ConfigValue, GlobalConfigDef, config_not_found
from zstackpy.core.db import Database, GlobalConfigVO
from zstackpy.core.db.retry import retrying
from zstackpy.core.errors import ZError

log = logging.getLogger(__name__)

V = TypeVar("V", int, float, bool, str)
Watcher = Callable[[Any, Any], Awaitable[None] | None]
Key = tuple[str, str]
# A bound, not GlobalConfigDef[V]: callers define mixed lists (GlobalConfigDef[int] |
# GlobalConfigDef[float]) that a constrained V cannot match.
D = TypeVar("D", bound=GlobalConfigDef[Any])

# Two nodes starting together may both insert the same new config; the loser re-reads.
_LOAD_ATTEMPTS = 3


class GlobalConfigs:
    def __init__(self) -> None:
        self._defs: dict[Key, GlobalConfigDef[Any]] = {}
        self._values: dict[Key, ConfigValue] = {}
        self._watchers: dict[Key, list[Watcher]] = {}

    # ----- definitions -----------------------------------------------------------------

    def define(self, defn: D) -> D:
        """Add a definition; its value is the default until ``load`` reads the stored one.

        Raises ValueError for a second definition of the same config: two owners of one
        name is a bug that must stop the node's start.
        """
        key = (defn.category, defn.name)
        if key in self._defs:
            raise ValueError(f"global config {defn.key} is defined twice")
        self._defs[key] = defn
        self._values[key] = defn.default
        return defn

    def definition(self, category: str, name: str) -> GlobalConfigDef[Any]:
        """The definition; ZError(CONFIG_NOT_FOUND) for an unknown config."""
        defn = self._defs.get((category, name))
        if defn is None:
            raise config_not_found(category, name)
        return defn

    def definitions(self) -> list[GlobalConfigDef[Any]]:
        return sorted(self._defs.values(), key=lambda d: (d.category, d.name))

    # ----- values ----------------------------------------------------------------------

    def get(self, category: str, name: str) -> ConfigValue:
        self.definition(category, name)
        return self._values[(category, name)]

    def value(self, defn: GlobalConfigDef[V]) -> V:
        """The typed value of a definition this code holds: ``configs.value(PING_INTERVAL)``."""
        self.definition(defn.category, defn.name)
        # define() stored a value of exactly defn.value_type, which is V.
        return cast(V, self._values[(defn.category, defn.name)])

    def get_int(self, category: str, name: str) -> int:
        return self._typed(category, name, int)

    def get_float(self, category: str, name: str) -> float:
        return self._typed(category, name, float)

    def get_bool(self, category: str, name: str) -> bool:
        return self._typed(category, name, bool)

    def get_str(self, category: str, name: str) -> str:
        return self._typed(category, name, str)

    def text(self, category: str, name: str) -> str:
        """The current value in its stored/wire form."""
        return self.definition(category, name).to_text(self.get(category, name))

    def _typed(self, category: str, name: str, kind: type[V]) -> V:
        defn = self.definition(category, name)
        if defn.value_type is not kind:
            # A caller asking for the wrong type is a programming error, not bad input.
            raise TypeError(
                f"global config {defn.key} is a {defn.type_name}, not a {kind.__name__}"
            )
        return cast(V, self._values[(category, name)])

    # ----- database --------------------------------------------------------------------

    async def load(self, db: Database) -> None:
        """Insert rows for definitions not stored yet, then cache every stored value.

        Idempotent; call again to pick up definitions added after the first load. A stored
        value that no longer validates (its definition changed) is logged and the default
        used; the row is left for an operator to fix.
        """
        for attempt in range(1, _LOAD_ATTEMPTS + 1):
            try:
                # Nodes starting together on a fresh database sync the same rows: InnoDB
                # may pick one as a deadlock victim, which runs again (two-nodes.sh did).
                rows = await retrying(partial(self._sync_rows, db), "syncing global configs")
                break
            except IntegrityError:
                if attempt == _LOAD_ATTEMPTS:
                    raise
                log.info("global config rows were inserted concurrently; reading them again")
        for key, defn in self._defs.items():
            row = rows.get(key)
            if row is None:
                continue
            try:
                self._values[key] = defn.parse(row)
            except ZError as exc:
                log.warning(
                    "stored value of global config %s is invalid, using default %r: %s",
                    defn.key,
                    defn.default,
                    exc.description,
                )
                self._values[key] = defn.default

    async def _sync_rows(self, db: Database) -> dict[Key, str]:
        async with db.session() as session, session.begin():
            result = await session.execute(select(GlobalConfigVO))
            stored = {(r.category, r.name): r for r in result.scalars()}
            for key, defn in self._defs.items():
                row = stored.get(key)
                if row is None:
                    session.add(
                        GlobalConfigVO(
                            category=defn.category,
                            name=defn.name,
                            value=defn.default_text(),
                            default_value=defn.default_text(),
                            description=defn.description,
                            value_type=defn.type_name,
                        )
                    )
                    continue
                # The code owns default, description and type; keep the row's copy current
                # for operators who read the table.
                row.default_value = defn.default_text()
                row.description = defn.description
                row.value_type = defn.type_name
            values = {key: row.value for key, row in stored.items()}
        for key, defn in self._defs.items():
            values.setdefault(key, defn.default_text())
        return values

    # ----- changes ---------------------------------------------------------------------

    def watch(self, category: str, name: str, callback: Watcher) -> Callable[[], None]:
        """Call ``callback(old, new)`` after each applied change; returns an unwatch function.

        Raises ZError(CONFIG_NOT_FOUND) for an unknown config.
        """
        self.definition(category, name)
        watchers = self._watchers.setdefault((category, name), [])
        watchers.append(callback)

        def unwatch() -> None:
            if callback in watchers:
                watchers.remove(callback)

        return unwatch

    async def apply_change(self, category: str, name: str, value: ConfigValue) -> bool:
        """Make ``value`` current and run the watchers; False if it was already current.

        Called by GlobalConfigService when a change event arrives. Raises ZError for an
        unknown config or an invalid value (the cache is then unchanged). A watcher that
        fails is logged; the others still run.
        """
        defn = self.definition(category, name)
        new = defn.parse(value)
        key = (category, name)
        old = self._values[key]
        if old == new and type(old) is type(new):
            return False
        self._values[key] = new
        for callback in list(self._watchers.get(key, ())):
            try:
                result = callback(old, new)
                if inspect.isawaitable(result):
                    await result
            except Exception:
                log.exception("watcher of global config %s failed", defn.key)
        return True
