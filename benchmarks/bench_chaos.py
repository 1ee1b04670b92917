"""The chaos benchmark: the harness of ``simulator/chaos`` at a large size.

Every fault the mode allows, one at a time, each against a fresh system loaded with 1,000
operations (VM creations, stops, starts, reboots, destroys) from 32 clients over 20
simulated hosts; prints the invariants' table (``docs/reliability.md``). Cluster mode
(``--nodes 3``) starts a private mariadbd and RabbitMQ node on free loopback ports.

Usage: ``python benchmarks/bench_chaos.py [--nodes 3] [--fault node-kill] [--ops 2000]``
(any option of ``python -m simulator.chaos``; later ones win).
"""

from __future__ import annotations

import sys

from simulator.chaos.cli import main

LARGE = ("--ops", "1000", "--concurrency", "32", "--hosts", "20", "--vm-pool", "150")

if __name__ == "__main__":
    raise SystemExit(main([*LARGE, *sys.argv[1:]]))
