"""``python -m simulator.stress``: see ``simulator.stress.cli``."""

from simulator.stress.cli import main

main()
