"""The cyclic garbage collector tuned for a long-running server process.

CPython collects its youngest generation every 700 net container allocations, and every
collection walks the survivors it must re-examine. A burst of VM creations allocates
messages, tasks, futures and ORM rows by the hundred thousand, and profiles of one showed
a fifth of the node's CPU in the collector. Two changes, made once start-up is over:

- ``gc.freeze()`` moves everything alive then (modules, classes, services, the compiled
  statement cache) out of the collector's sight for good: it is never garbage, and every
  full collection walked it.
- the youngest generation is collected every ``GEN0_THRESHOLD`` allocations instead of 700.
  Garbage without cycles is freed at once by reference counting either way; only cyclic
  garbage waits longer, bounded by that many container objects.
"""

from __future__ import annotations

import gc

GEN0_THRESHOLD = 20_000
GEN1_THRESHOLD = 20
GEN2_THRESHOLD = 50


def tune_after_start() -> None:
    """Call once, in a server process's entry point, when its start-up is done (not in a
    library call: frozen objects are never collected, so a test process starting many
    nodes would keep each one's start-up garbage)."""
    gc.collect()  # start-up's own garbage goes now, not into the frozen generation
    gc.freeze()
    gc.set_threshold(GEN0_THRESHOLD, GEN1_THRESHOLD, GEN2_THRESHOLD)
