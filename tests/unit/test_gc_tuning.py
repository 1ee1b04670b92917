"""The collector tuning a server process applies once started (in a child process: it
changes the interpreter for good)."""

from __future__ import annotations

import json
import subprocess
import sys

from zstackpy.core import gc_tuning

PROBE = """
import gc, json
from zstackpy.core.gc_tuning import tune_after_start
before = gc.get_freeze_count()
tune_after_start()
print(json.dumps({"threshold": gc.get_threshold(), "frozen": gc.get_freeze_count() - before}))
"""


def test_start_up_objects_are_frozen_and_young_collections_are_rarer() -> None:
    out = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    seen = json.loads(out)
    assert seen["threshold"] == [
        gc_tuning.GEN0_THRESHOLD,
        gc_tuning.GEN1_THRESHOLD,
        gc_tuning.GEN2_THRESHOLD,
    ]
    assert seen["threshold"][0] > 700  # CPython's default
    assert seen["frozen"] > 1000  # the imported modules' objects at least
