"""``python -m simulator.walker walk|replay ...``: see ``simulator.walker.cli``."""

from simulator.walker.cli import main

raise SystemExit(main())
